"""The pure clustering plan (no store): links in, clusters with stable ids, evidence and the
review queue out; a full run and an incremental one through the same path."""

from __future__ import annotations

from datetime import UTC, datetime

from custos.core.settings import Settings
from custos.identity.clustering import Decisions, History, ProfilePlan, plan_profiles
from custos.identity.exact import exact_edges
from custos.identity.graph import Edge, Node
from custos.identity.ids import PREFIX
from custos.identity.matcher import EVIDENCE_BITS

# Anna twice (one e-mail), Anna's order (scored, with her birth date and phone), a note of an
# Anna Müller (a near miss below the threshold), Max and Moritz (twins: one birth date, scored
# high on household facts, but two persons).
NODES = [
    Node(1, True, "anna", "muller", "1985-03-07", (("email", "anna@example.com"),)),
    Node(2, True, "anna", "muller", "1985-03-07", (("email", "anna@example.com"),)),
    Node(3, True, "anna", "muller", "1985-03-07", (("phone", "+4917611111"),)),
    Node(4, True, "anna", "muller", None, ()),
    Node(5, True, "max", "lehmann", "2001-01-01", ()),
    Node(6, True, "moritz", "lehmann", "2001-01-01", ()),
]
PERSON = EVIDENCE_BITS["first_name"] | EVIDENCE_BITS["dob"] | EVIDENCE_BITS["surname"]
PROBABLE = [
    Edge(2, 3, "match", 9.0, PERSON),
    Edge(5, 6, "match", 8.0, EVIDENCE_BITS["surname"] | EVIDENCE_BITS["dob"]),
    Edge(3, 4, "match", -1.0, EVIDENCE_BITS["surname"]),
]
SETTINGS = Settings(_env_file=None, db="unused")  # type: ignore[call-arg]
NAMES = {n.raw_id: f"crm\x1f{n.raw_id}" for n in NODES}


def _plan(
    history: History, decisions: Decisions | None = None, new: set[int] | None = None
) -> ProfilePlan:
    exact = exact_edges(NODES, max_persons=3, max_records=50)
    return plan_profiles(
        NODES,
        exact,
        PROBABLE,
        decisions or Decisions(),
        SETTINGS,
        history,
        lambda raw_ids: [NAMES[r] for r in raw_ids],
        new=new,
    )


def test_a_full_plan_links_the_person_and_keeps_twins_and_near_misses_apart() -> None:
    planned = _plan(History())
    assert planned.clusters == [[1, 2, 3], [4], [5], [6]]
    assert {(e.left, e.right, e.rule) for e in planned.used} >= {(2, 3, "match")}
    ids = planned.assigned.cluster_ids
    assert all(pid.startswith(PREFIX) for pid in ids) and len(set(ids)) == 4
    assert planned.assigned.created == set(ids) and not planned.assigned.merged
    # the same inputs, the same ids (derived from each cluster's first record)
    assert _plan(History()).assigned.cluster_ids == ids
    # merge evidence names the profile of its records, with ids after the given one
    rows = list(planned.evidence_rows(after=10))
    assert [r[0] for r in rows] == list(range(11, 11 + len(rows)))
    assert all(r[1] == ids[0] for r in rows)
    # the twins' link was refused (two persons) and the near miss kept, both for review
    review = planned.review_rows({(5, 6): 7, (0, 0): 9})
    assert {(r[1], r[2], r[3]) for r in review} == {(5, 6, "conflict"), (3, 4, "possible")}
    assert {r[0] for r in review if (r[1], r[2]) == (5, 6)} == {7}  # a known pair keeps its id
    assert {r[0] for r in review if (r[1], r[2]) == (3, 4)} == {10}  # a new one: never used


def test_ids_survive_a_rerun_and_merged_profiles_redirect() -> None:
    then = datetime(2026, 1, 1, tzinfo=UTC)
    history = History(
        previous={1: "cus_old", 2: "cus_old", 3: "cus_order"},
        created_at={"cus_old": then, "cus_order": datetime(2026, 2, 1, tzinfo=UTC)},
        taken={"cus_old", "cus_order"},
    )
    planned = _plan(history)
    assert planned.assigned.cluster_ids[0] == "cus_old"
    assert planned.assigned.merged == {"cus_order": "cus_old"}


def test_people_decisions_overrule_the_evidence() -> None:
    apart = _plan(History(), Decisions(apart=[(2, 3)]))
    assert [1, 2] in apart.clusters and [3] in apart.clusters
    together = _plan(History(), Decisions(together=[Edge(5, 6, "manual:merge")]))
    assert [5, 6] in together.clusters


def test_an_incremental_plan_splits_what_the_evidence_splits_and_plans_only_what_changed() -> None:
    then, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    # Before: Anna's two records and the note of an Anna Müller were one profile, and so were
    # the twins; Anna's order (3) is the new row.
    history = History(
        previous={1: "cus_a", 2: "cus_a", 4: "cus_a", 5: "cus_t", 6: "cus_t"},
        created_at={"cus_a": then, "cus_t": later},
        taken={"cus_a", "cus_t"},
    )
    planned = _plan(history, new={3})
    # planned again as a full run plans them: the order joins Anna, the note and the twins
    # are split off (the larger or first part keeps the id, the other gets a new one)
    assert planned.clusters == [[1, 2, 3], [4], [5], [6]]
    ids, created = planned.assigned.cluster_ids, planned.assigned.created
    assert ids[0] == "cus_a" and "cus_t" in ids[2:]
    assert created == {ids[1]} | (set(ids[2:]) - {"cus_t"}) and len(created) == 2
    # each new id records the profile it split off (a profile event)
    assert planned.assigned.split == {ids[1]: "cus_a"} | dict.fromkeys(created - {ids[1]}, "cus_t")
    assert planned.member_of == {1: "cus_a", 2: "cus_a", 3: "cus_a"} | {
        r: ids[i] for i, r in ((1, 4), (2, 5), (3, 6))
    }
    assert all(e.left in planned.member_of for e in planned.used)
    # profiles that stay as they were (the twins, each in a profile of their own already) are
    # none of the run's business
    apart = History(
        previous={1: "cus_a", 2: "cus_a", 4: "cus_a", 5: "cus_m", 6: "cus_n"},
        created_at={"cus_a": then, "cus_m": later, "cus_n": later},
        taken={"cus_a", "cus_m", "cus_n"},
    )
    planned = _plan(apart, new={3})
    assert planned.clusters == [[1, 2, 3], [4]]
    assert planned.assigned.cluster_ids[0] == "cus_a"
    assert planned.assigned.created == {planned.assigned.cluster_ids[1]}
    # a profile of new records only is no split
    assert not _plan(History(), new={1, 2, 3, 4, 5, 6}).assigned.split


def test_a_father_and_a_son_of_one_name_make_their_address_a_household() -> None:
    """Born 1945 and 1975, they give the home's North American number (which does not say
    whether it rings at home): neither that number nor one name makes them one person, and a
    "D. Sanders" at their address could be either."""
    home, phone = "3600 sanchez rd|60662", (("phone", "+13129790423"),)
    nodes = [
        Node(1, True, "david", "sanders", "1945-02-26", phone, None, home),
        Node(2, True, "david", "sanders", "1975-12-26", phone, None, home),
        Node(3, True, "d", "sanders", None, (), None, home),
        Node(4, True, "d", "sanders", None, (), None, home),
    ]
    exact = exact_edges(nodes, max_persons=3, max_records=50)
    assert ("address", home) in exact.homes[1]
    assert {3, 4} <= exact.undecided
    assert not exact.edges  # (the number is the household's: it links nobody)
    # one person's birth dates, a typo in one and day and month swapped in another, are no
    # household
    one = [
        Node(5, True, "anna", "berg", "1984-06-12", (), None, "weg 1|10115"),
        Node(6, True, "anna", "berg", "1948-06-12", (), None, "weg 1|10115"),
        Node(7, True, "anna", "berg", "1984-12-06", (), None, "weg 1|10115"),
    ]
    assert not exact_edges(one, max_persons=3, max_records=50).homes


def test_one_name_in_two_transliterations_is_no_household() -> None:
    """Twins Andreas and Andrea, each written alike in two sources, live together; one man
    spelt Mohammed by two sources and Muhammad by two others is one man at his address."""
    home = "rosenstr 78|50949"
    twins = [
        Node(1, True, "andreas", "hofmann", None, (), None, home),
        Node(2, True, "andreas", "hofmann", "1976-04-17", (), None, home),
        Node(3, True, "andrea", "hofmann", "1976-04-17", (), None, home),
        Node(4, True, "andrea", "hofmann", None, (), None, home),
    ]
    assert ("address", home) in exact_edges(twins, max_persons=3, max_records=50).homes[1]
    mail = (("email", "m.yilmaz@example.com"),)
    one = [
        Node(n, True, first, "yilmaz", None, mail, None, "weg 1|10115")
        for n, first in enumerate(("mohammed", "mohammed", "muhammad", "muhammad"), 5)
    ]
    exact = exact_edges(one, max_persons=3, max_records=50)
    assert not exact.homes
    assert len(exact.edges) == 3  # one person's e-mail links his four records


def test_a_nameless_call_on_a_north_american_number_at_a_family_s_home_joins_nobody() -> None:
    """Lisa's number does not say whether it rings in her pocket or at home: a call with no
    name on it is hers where she lives alone, nobody's where her son lives too."""
    home, lisa = "3872 michael port|40085", (("phone", "+16173575201"),)

    def nodes(son: bool) -> list[Node]:
        out = [
            Node(1, True, "lisa", "cole", "1970-05-01", lisa, None, home),
            Node(2, False, None, None, None, lisa),  # the call
        ]
        if son:
            out.append(Node(3, True, "kevin", "cole", "2001-02-03", (), None, home))
        return out

    alone = exact_edges(nodes(son=False), max_persons=3, max_records=50)
    assert {(e.left, e.right) for e in alone.edges} == {(1, 2)}
    family = exact_edges(nodes(son=True), max_persons=3, max_records=50)
    assert not family.edges


def test_a_personal_e_mail_outranks_the_family_number() -> None:
    """William Bishop and his son William each order under their own e-mail, without a birth
    date, giving the family's North American number that Susan and Clayton give too: each
    order is its e-mail's William's, never the other's through the number."""
    home, family = "89771 matthew expy|46565", ("phone", "+15034950056")
    father, son = ("email", "williambishop77@example.com"), ("email", "wilbish17@example.com")
    nodes = [
        Node(1, True, "clayton", "bishop", "2003-06-29", (family,), None, home),
        Node(2, True, "william", "bishop", None, (son, family), None, home),
        Node(3, True, "william", "bishop", None, (father, family), None, home),
        Node(4, True, "susan", "bishop", "1981-07-08", (family,), None, home),
        Node(5, True, "william", "bishop", "1977-01-24", (father,), None, home),
        Node(6, True, "william", "bishop", "2003-01-29", (son,), None, home),
    ]
    exact = exact_edges(nodes, max_persons=3, max_records=50)
    planned = plan_profiles(
        nodes,
        exact,
        [],
        Decisions(),
        SETTINGS,
        History(),
        lambda raw_ids: [f"crm\x1f{r}" for r in raw_ids],
    )
    assert sorted(planned.clusters) == [[1], [2, 6], [3, 5], [4]]


def test_a_first_name_that_two_residents_go_by_is_undecided_without_a_birth_date() -> None:
    """A father and a son Timothy live at one address: an order of "Timohy" (a typo) without a
    birth date could be either's; "Ann" beside Ann and Annett is Ann's (one goes by it)."""
    home = "210 duncan sts|42092"
    nodes = [
        Node(1, True, "timothy", "goodman", "1966-04-29", (), None, home),
        Node(2, True, "timothy", "goodman", "2015-12-13", (), None, home),
        Node(3, True, "kelly", "goodman", "1968-12-17", (), None, home),
        Node(4, True, "timohy", "goodman", None, (), None, home),
        Node(5, True, "kelly", "goodman", None, (), None, home),
    ]
    exact = exact_edges(nodes, max_persons=3, max_records=50)
    assert exact.undecided == {4}
    home = "jockelplatz 109|33602"
    hillers = [
        Node(1, True, "ann", "hiller", "1965-12-22", (), None, home),
        Node(2, True, "annett", "hiller", "1940-11-16", (), None, home),
        Node(3, True, "maik", "hiller", "1943-03-23", (), None, home),
        Node(4, True, "ann", "hiller", None, (), None, home),
        Node(5, True, "annett", "hiller", None, (), None, home),
    ]
    assert not exact_edges(hillers, max_persons=3, max_records=50).undecided


def test_an_initial_joins_the_one_resident_it_can_be() -> None:
    """ "Herr R. Schulz", born 1945, is Roland (born 1945), not Rose-Marie: a man, and her
    e-mail gives her birth date of 1968 on her CRM record though not on her catalogue request.
    Either fact alone rules her out."""
    home, landline = "roskothallee 99|99087", ("phone", "+49361985420")
    rose = ("email", "schulz.rose-marie@example.com")
    evidence = (
        EVIDENCE_BITS["first_name"]
        | EVIDENCE_BITS["surname"]
        | EVIDENCE_BITS["dob"]
        | EVIDENCE_BITS["household"]
    )

    def clusters(salutation: str | None, her_mail: bool) -> list[list[int]]:
        nodes = [
            Node(1, True, "r", "schulz", "1945-03-05", (landline,), None, home, (), salutation),
            Node(2, True, "roland", "schulz", "1945-03-05", (), None, home),
            Node(3, True, "rose marie", "schulz", "1968-12-29", (rose,), None, home),
            Node(4, True, "rose marie", "schulz", None, (rose,) if her_mail else (), None, home),
            Node(5, True, "irmengard", "schulz", "1944-08-31", (landline,), None, home),
            Node(6, True, "ingetraud", "schulz", "1975-06-09", (), None, home),
        ]
        exact = exact_edges(nodes, max_persons=3, max_records=50)
        planned = plan_profiles(
            nodes,
            exact,
            [Edge(1, 2, "match", 22.5, evidence)],
            Decisions(),
            SETTINGS,
            History(),
            lambda raw_ids: [f"crm\x1f{r}" for r in raw_ids],
        )
        return sorted(planned.clusters)

    assert [1, 2] in clusters("m", her_mail=False)
    assert [1, 2] in clusters(None, her_mail=True)
    # neither: "R. Schulz" could be Rose-Marie, whose catalogue request says no more
    assert [1, 2] not in clusters(None, her_mail=False)


def test_near_names_of_two_genders_on_a_family_mailbox_are_two_persons() -> None:
    """Twins Jan and Jana order under "familie.hein@": two persons, as on a number that rings
    at home. On a personal address, "Jana" beside "Jan" may be one person's typo."""
    from custos.identity.exact import _family_mailbox

    home = "wulfallee 8|62332"

    def edges(mail: str) -> set[tuple[int, int]]:
        ident = ("email", mail)
        nodes = [
            Node(1, True, "jan", "hein", "2014-08-05", (ident,), None, home),
            Node(2, True, "jan", "hein", None, (ident,), None, home),
            Node(3, True, "jana", "hein", None, (ident,), None, home),
        ]
        found = exact_edges(nodes, max_persons=3, max_records=50).edges
        return {(min(e.left, e.right), max(e.left, e.right)) for e in found}

    assert edges("familie.hein@example.com") == {(1, 2)}
    assert edges("jan.hein@example.com") == {(1, 2), (1, 3)}
    assert _family_mailbox(("email", "the.claytons@example.com"))
    assert _family_mailbox(("email", "fam.otto@example.com"))
    assert _family_mailbox(("email", "smithfamily@example.com"))
    assert not _family_mailbox(("email", "famous.joe@example.com"))
