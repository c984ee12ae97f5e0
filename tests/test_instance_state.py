"""State of one store or one key lives on the object that owns it (a custos instance, a set of
text filters), not in module memos shared by the whole process."""

from __future__ import annotations

from pathlib import Path

from custos.core.keys import load_or_create_key
from custos.core.settings import Settings
from custos.service import Custos, keys
from custos.service.pii import TextFilters


def _open(folder: Path) -> Custos:
    db = str(folder / "custos.db")
    return Custos.open(db, Settings(db=db, secret_key_file=str(folder / "secret.key")))


def test_identity_secrets_are_the_instances_own(tmp_path: Path) -> None:
    """Two instances with different key files derive different secrets for the same key name;
    an instance opened after the key file is replaced derives from the new one."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with _open(tmp_path / "a") as one, _open(tmp_path / "b") as other:
        first = one.identity_secrets.of("web")
        assert first == one.identity_secrets.of("web")
        assert first != other.identity_secrets.of("web")
    (tmp_path / "a" / "secret.key").unlink()
    load_or_create_key(str(tmp_path / "a" / "secret.key"))
    with _open(tmp_path / "a") as again:
        assert again.identity_secrets.of("web") != first


def test_identity_secrets_stay_bounded(tmp_path: Path) -> None:
    secrets = keys.IdentitySecrets(tmp_path / "secret.key")
    for i in range(keys.IdentitySecrets.MAX + 10):
        secrets.of(f"key-{i}")
    assert len(secrets._derived) <= keys.IdentitySecrets.MAX


def test_text_filters_keep_their_own_key(tmp_path: Path) -> None:
    """Filters of two key files pseudonymise with their own key, whichever was made last."""
    text = "Rückruf unter 0171 2345678."
    one, other = TextFilters(tmp_path / "one.key"), TextFilters(tmp_path / "two.key")
    hidden_other, _ = other.by_policy()["pseudonymise"](text, "de")
    hidden_one, _ = one.by_policy()["pseudonymise"](text, "de")
    assert "0171" not in hidden_one and "0171" not in hidden_other
    assert hidden_one != hidden_other
    assert one.by_policy()["pseudonymise"](text, "de")[0] == hidden_one
    assert one.by_policy()["redact"]("Lieferung fehlt.", "de") == ("Lieferung fehlt.", None)


def test_the_latest_model_is_parsed_once_per_instance(tmp_path: Path) -> None:
    from custos.identity import models
    from custos.identity.matcher import default_model

    model = default_model()
    assert model is not None
    with _open(tmp_path) as custos:
        with custos.store.write() as conn:
            models.save(conn, model, {"first_name": {"kim": 0.1}}, trained_on=3, threshold=1.0)
        with custos.store.read() as conn:
            first = custos.model_cache.latest(conn)
            assert first is not None and custos.model_cache.latest(conn) is first
            assert models.latest(conn) is not first  # without a cache: parsed again
        assert first.scorer is first.scorer  # the scorer stays with its model
        with custos.store.write() as conn:
            models.save(conn, model, {"first_name": {"kim": 0.2}}, trained_on=4, threshold=1.0)
        with custos.store.read() as conn:
            newer = custos.model_cache.latest(conn)
        assert newer is not None and newer.version == first.version + 1
        assert list(custos.model_cache.parsed.values()) == [newer]


def test_a_changed_taxonomy_extension_is_read_by_the_next_instance(tmp_path: Path) -> None:
    extension = tmp_path / "taxonomy.yaml"
    extension.write_text("categories:\n  loyalty_tier: {description: first}\n", encoding="utf-8")
    db = str(tmp_path / "custos.db")
    settings = Settings(db=db, taxonomy=str(extension), secret_key_file=str(tmp_path / "k"))
    with Custos.open(db, settings) as custos:
        assert "loyalty_tier" in custos.taxonomy.categories
    extension.write_text("categories:\n  club_level: {description: second}\n", encoding="utf-8")
    with Custos.open(db, settings) as custos:
        assert "club_level" in custos.taxonomy.categories
