// The custos web UI: a thin page over the REST API. Every request carries the API key as a
// Bearer token; the API's guard decides what is shown. Values are written with textContent
// only (never as HTML); charts are SVG elements made here (no chart library, no inline style).
"use strict";
const state = {
  key: sessionStorage.getItem("custos-key") || "",
  scope: "",
  purposes: [],
  review: { offset: 0, limit: 50 },
  results: { cursors: [""], page: 0, query: "", limit: 25 },
  quarantine: { cursor: null },
  audit: { cursor: null },
};
const CURATION = "identity_curation";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, ...(options.headers || {}) };
  const answer = await fetch(path, { ...options, headers });
  const body = answer.status === 204 ? {} : await answer.json();
  if (!answer.ok) {
    const error = body.error || {};
    const failed = new Error(`${answer.status}: ${error.message || "request failed"}` +
      (error.hint ? ` (${error.hint})` : ""));
    failed.status = answer.status;
    throw failed;
  }
  return body;
}

async function apiText(path) {
  const answer = await fetch(path, { headers: { Authorization: `Bearer ${state.key}` } });
  if (!answer.ok) {
    const error = (await answer.json()).error || {};
    throw new Error(`${answer.status}: ${error.message || "request failed"}`);
  }
  return answer.text();
}

function say(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

// A table cell: text, or a node (a <time>, a badge) as it is.
function cell(row, value) {
  const td = document.createElement("td");
  if (value instanceof Node) td.appendChild(value);
  else td.textContent = value == null ? "" : String(value);
  row.appendChild(td);
}

function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text != null) made.textContent = String(text);
  if (className) made.className = className;
  return made;
}

// Human-friendly times: "3 hours ago", "yesterday, 14:05", "12 Mar 2025"; the exact UTC time
// is the element's datetime and its tooltip.
const RELATIVE = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
const DAY = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric" });
const CLOCK = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });

function friendly(iso, now = Date.now()) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return String(iso);
  const seconds = (at.getTime() - now) / 1000;
  const ago = Math.abs(seconds);
  if (ago < 45) return seconds <= 0 ? "just now" : "in a moment";
  if (ago < 3600) return RELATIVE.format(Math.round(seconds / 60), "minute");
  if (ago < 6 * 3600) return RELATIVE.format(Math.round(seconds / 3600), "hour");
  const days = Math.round((startOfDay(at) - startOfDay(new Date(now))) / 86400000);
  if (Math.abs(days) <= 1) return `${RELATIVE.format(days, "day")}, ${CLOCK.format(at)}`;
  if (Math.abs(days) < 7) return RELATIVE.format(days, "day");
  return DAY.format(at);
}

function startOfDay(at) {
  return new Date(at.getFullYear(), at.getMonth(), at.getDate()).getTime();
}

function when(iso) {
  if (!iso) return "";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return String(iso);  // not a time: shown as it came
  const time = element("time", friendly(iso));
  time.dateTime = iso;
  time.title = at.toISOString().replace(".000Z", "Z");
  return time;
}

async function useKey(key) {
  state.key = key;
  try {
    const me = await api("/v1/me");
    sessionStorage.setItem("custos-key", key);
    $("who").textContent = `key ${me.name} (${me.scope})`;
    state.scope = me.scope;
    const select = $("purpose");
    select.replaceChildren();
    for (const purpose of me.purposes) {
      const option = document.createElement("option");
      option.value = option.textContent = purpose;
      select.appendChild(option);
    }
    state.purposes = me.purposes;
    $("login").hidden = true;
    $("nav").hidden = false;
    const admin = me.scope === "admin";
    $("nav-quarantine").hidden = !admin;
    $("nav-consent").hidden = !(admin || me.purposes.includes("consent_management"));
    $("nav-audit").hidden = !admin;
    $("nav-review").hidden = !me.purposes.includes(CURATION);
    $("review-reason-label").hidden = !admin;
    showPage("search");
    say("");
  } catch (error) {
    sessionStorage.removeItem("custos-key");
    say(error.message);
  }
}

// One page at a time: the profiles (with the profile and the access requests), the quarantine,
// the consent overview, the audit log or the review queue. The page's button is marked current
// and the page's heading takes the focus (keyboard and screen-reader users land on it).
const PAGES = { search: "search", quarantine: "quarantine", consent: "consent-overview",
  sources: "sources", audit: "audit", review: "review" };

function showPage(name) {
  const search = name === "search";
  for (const [page, section] of Object.entries(PAGES)) $(section).hidden = page !== name;
  $("dsr").hidden = !search || state.scope !== "admin";
  if (!search) {
    $("results").hidden = true;
    $("profile").hidden = true;
  }
  for (const button of $("nav").querySelectorAll("button")) {
    if (button.dataset.page === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
}

function focusOn(id) {
  const target = $(id);
  if (target) target.focus({ preventScroll: false });
}

// The rows of a table: instead of those it shows, or after them (more: the next page).
function fill(table, rows, more = false) {
  const body = $(table).tBodies[0];
  if (!more) body.replaceChildren();
  for (const values of rows) {
    const row = body.insertRow();
    values.forEach((v) => cell(row, v));
  }
}

// -- the profile list: a page of profiles, or of a name search ------------------------------

// A person's name as the purpose may see it (golden attributes of a list item or a search hit).
function nameOf(item) {
  const parts = [item.first_name, item.last_name].filter(Boolean);
  return parts.length ? parts.join(" ") : item.full_name || item.name || "";
}

function firstOf(item, kind) {
  if (item[kind]) return item[kind];
  const found = (item.identifiers || {})[kind];
  return found && found.length ? found[0] : "";
}

function profileCard(item, purpose) {
  const li = document.createElement("li");
  const link = profileLink(nameOf(item) || item.profile_id, item.profile_id, () =>
    openProfile(item.profile_id, purpose),
  );
  li.appendChild(link);
  const facts = element("span", null, "facts");
  for (const value of [firstOf(item, "email"), firstOf(item, "phone"), item.city]) {
    if (value) facts.appendChild(element("span", value));
  }
  if (item.score != null) facts.appendChild(element("span", `match ${Math.round(item.score * 100)}%`));
  if (item.updated_at) {
    const updated = element("span", "updated ");
    updated.appendChild(when(item.updated_at));
    facts.appendChild(updated);
  }
  li.appendChild(facts);
  li.appendChild(element("code", item.profile_id, "muted"));
  return li;
}

// A page of profiles: the listing, or (with a query) the name search. Cursor paging: the cursor
// of each page seen is kept, so Previous goes back without the API counting from the start.
async function showResults() {
  $("profile").hidden = true;
  const r = state.results;
  const purpose = $("purpose").value;
  const params = new URLSearchParams({ purpose, limit: String(r.limit) });
  if (r.cursors[r.page]) params.set("cursor", r.cursors[r.page]);
  let page;
  try {
    if (r.query) {
      params.set("q", r.query);
      page = await api(`/v1/profiles/search?${params}`);
    } else {
      page = await api(`/v1/profiles?${params}`);
    }
  } catch (error) {
    if (r.query && (error.status === 404 || error.status === 405)) {
      // a server without the name search: an e-mail or phone still finds its person
      $("results").hidden = true;
      say("this server has no name search: find by an exact identifier instead");
      focusOn("value");
      return;
    }
    say(error.message);
    return;
  }
  const ul = $("profile-list");
  ul.replaceChildren();
  for (const item of page.items) ul.appendChild(profileCard(item, purpose));
  r.cursors[r.page + 1] = page.next_cursor || "";
  const first = r.page * r.limit + 1;
  const last = r.page * r.limit + page.items.length;
  const what = r.query ? `matching “${r.query}”` : `purpose ${purpose} may see`;
  $("results-count").textContent = page.items.length
    ? `Profiles ${first}\u2013${last} ${what}${page.next_cursor ? " (more on the next page)" : ""}`
    : `No profile ${what}${r.page ? " on this page" : ""}`;
  $("results-title").textContent = r.query ? "Search results" : "Profiles";
  $("results-prev").disabled = r.page === 0;
  $("results-next").disabled = !page.next_cursor;
  $("results").hidden = false;
  say(page.items.length || r.page ? "" : r.query ? "" : "no profile this purpose may see");
}

function listProfiles(query) {
  state.results = { ...state.results, cursors: [""], page: 0, query };
  return showResults();
}

function resultsPage(step) {
  state.results.page = Math.max(0, state.results.page + step);
  showResults();
}

// -- one profile ----------------------------------------------------------------------------

function golden(profile, attribute) {
  const found = profile.golden.find((g) => g.attribute === attribute);
  return found ? found.value : "";
}

// The summary card: who, how to reach them (what the purpose may see) and how much is known.
function showSummary(profile) {
  const values = Object.fromEntries(profile.golden.map((g) => [g.attribute, g.value]));
  const ids = profile.identifiers || {};
  const name = nameOf(values) || golden(profile, "full_name");
  $("profile-name").textContent = name || "A person (name not shown to this purpose)";
  const contact = $("summary-contact");
  contact.replaceChildren();
  const place = [values.postcode, values.city, values.country].filter(Boolean).join(" ");
  const facts = [
    ["e-mail", (ids.email || [values.email]).filter(Boolean).join(", ")],
    ["phone", (ids.phone || [values.phone]).filter(Boolean).join(", ")],
    ["customer id", (ids.customer_id || []).join(", ")],
    ["place", place],
    ["born", values.date_of_birth],
  ];
  for (const [label, value] of facts) {
    if (!value) continue;
    contact.append(element("dt", label), element("dd", value));
  }
  const counts = $("summary-counts");
  counts.replaceChildren();
  const sources = new Set((profile.records || []).map((r) => r.source));
  const numbers = [
    ["records", (profile.records || []).length],
    ["sources", sources.size],
    ["interactions", profile.interaction_count],
  ];
  for (const [label, value] of numbers) {
    const dd = element("dd", value);
    dd.dataset.count = label;
    counts.append(dd, element("dt", label));
  }
  const updated = element("dd");
  updated.appendChild(when(profile.updated_at));
  counts.append(updated, element("dt", "updated"));
}

// The consent state and its history need a key bound to consent_management: any other key is
// refused by the API, and the refusal is shown in place.
async function showConsent(profileId) {
  const note = $("consent-message");
  fill("consent", []);
  fill("consent-history", []);
  try {
    const found = await api(`/v1/profiles/${encodeURIComponent(profileId)}/consent`);
    note.hidden = true;
    fill("consent", Object.entries(found.states).map(([purpose, s]) =>
      [purpose, badge(s.status), s.since ? when(s.since) : "", s.basis, s.allowed ? "yes" : "no"]));
    fill("consent-history", found.ledger.map((e) =>
      [e.id, when(e.timestamp), e.purpose, badge(e.status), e.source, e.method]));
  } catch (error) {
    note.textContent = error.message;
    note.hidden = false;
  }
}

function badge(status) {
  return element("span", status, `status-${String(status).replace(/[^a-z_]/g, "")}`);
}

// Sentiment is shown when the profile's purpose may use it and there is some: the current mood,
// a chart of each interaction's score over time, and the scores as a table.
async function showSentiment(profileId, purpose) {
  const box = $("sentiment");
  box.hidden = true;
  try {
    const query = encodeURIComponent(purpose);
    const found = await api(`/v1/profiles/${encodeURIComponent(profileId)}/sentiment?purpose=${query}`);
    if (!found.timeline.length) return;
    $("mood").textContent = found.mood == null ? "unknown" : moodWord(found.mood);
    fill("sentiment-timeline", found.timeline.map((e) => [when(e.at), e.channel, e.label, e.score]));
    $("mood-chart").replaceChildren(...moodChart(found.timeline));
    box.hidden = false;
  } catch (error) {
    box.hidden = true;
  }
}

function moodWord(mood) {
  const word = mood > 0.25 ? "positive" : mood < -0.25 ? "negative" : "neutral";
  return `${word} (${mood > 0 ? "+" : mood < 0 ? "\u2212" : ""}${Math.abs(mood).toFixed(2)})`;
}

function svg(tag, attributes, text) {
  const made = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, String(value));
  if (text != null) made.textContent = String(text);
  return made;
}

// The mood timeline: each scored interaction as a dot at its time and score (−1 to +1), joined
// by a line, over bands for negative and positive; each dot's tooltip names the time, channel
// and label. Returns the chart and its caption.
function moodChart(timeline) {
  const points = timeline.filter((e) => e.score != null)
    .map((e) => ({ ...e, t: new Date(e.at).getTime() }))
    .filter((e) => !Number.isNaN(e.t));
  const width = 720, height = 180, left = 44, right = 12, top = 10, bottom = 28;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-labelledby": "mood-chart-title", class: "chart" });
  chart.appendChild(svg("title", { id: "mood-chart-title" },
    `Sentiment of ${points.length} interaction(s) over time, from \u22121 (negative) to +1 (positive)`));
  const first = Math.min(...points.map((p) => p.t));
  const last = Math.max(...points.map((p) => p.t));
  const span = Math.max(last - first, 1);
  const x = (t) => points.length === 1 ? (left + width - right) / 2
    : left + ((t - first) / span) * (width - left - right);
  const y = (score) => top + ((1 - score) / 2) * (height - top - bottom);
  chart.appendChild(svg("rect", { x: left, y: y(1), width: width - left - right,
    height: y(0) - y(1), class: "band-positive" }));
  chart.appendChild(svg("rect", { x: left, y: y(0), width: width - left - right,
    height: y(-1) - y(0), class: "band-negative" }));
  for (const [score, label] of [[1, "+1"], [0, "0"], [-1, "\u22121"]]) {
    chart.appendChild(svg("line", { x1: left, x2: width - right, y1: y(score), y2: y(score),
      class: score === 0 ? "axis" : "grid" }));
    chart.appendChild(svg("text", { x: left - 6, y: y(score) + 4, class: "tick",
      "text-anchor": "end" }, label));
  }
  const ticks = points.length === 1 ? [first] : [first, first + span / 2, last];
  for (const t of ticks) {
    chart.appendChild(svg("text", { x: x(t), y: height - 8, class: "tick",
      "text-anchor": t === first && points.length > 1 ? "start" : t === last ? "end" : "middle" },
      DAY.format(new Date(t))));
  }
  if (points.length > 1) {
    chart.appendChild(svg("polyline", { class: "mood-line",
      points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.score).toFixed(1)}`).join(" ") }));
  }
  for (const p of points) {
    const dot = svg("circle", { cx: x(p.t).toFixed(1), cy: y(p.score).toFixed(1), r: 4.5,
      class: `dot ${p.score > 0.25 ? "positive" : p.score < -0.25 ? "negative" : "neutral"}` });
    dot.appendChild(svg("title", {}, `${friendly(p.at)}: ${p.channel || "interaction"}, ` +
      `${p.label} (${p.score})`));
    chart.appendChild(dot);
  }
  const caption = element("figcaption", `${points.length} scored interaction(s)` +
    (points.length ? `, ${DAY.format(new Date(first))} to ${DAY.format(new Date(last))}` : ""));
  return [chart, caption];
}

function showProfile(profile) {
  $("results").hidden = true;
  $("profile").hidden = false;
  $("profile-id").textContent = profile.profile_id;
  $("profile-purpose").textContent = profile.purpose;
  showSummary(profile);
  const goldenRows = $("golden").tBodies[0];
  goldenRows.replaceChildren();
  for (const item of profile.golden) {
    const row = goldenRows.insertRow();
    [item.attribute, item.value, item.source, item.record_id].forEach((v) => cell(row, v));
  }
  const identifiers = $("identifiers");
  identifiers.replaceChildren();
  for (const [kind, values] of Object.entries(profile.identifiers)) {
    const li = document.createElement("li");
    li.textContent = `${kind}: ${values.join(", ")}`;
    identifiers.appendChild(li);
  }
  // Each member record with the name, e-mail and phone it holds, as far as the purpose may see
  // them (the API leaves out the rest).
  const records = $("records").tBodies[0];
  records.replaceChildren();
  for (const item of profile.records || []) {
    const row = records.insertRow();
    [item.source, item.record_id, item.full_name, item.email, item.phone].forEach((v) =>
      cell(row, v));
    const td = row.insertCell();
    if (state.scope === "admin") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "unmerge";
      button.textContent = "unmerge";
      button.dataset.record = `${item.source}:${item.record_id}`;
      button.setAttribute("aria-label", `unmerge record ${item.source}:${item.record_id}`);
      button.addEventListener("click", () => unmerge(profile, button.dataset.record));
      td.appendChild(button);
    }
  }
  const evidence = $("evidence").tBodies[0];
  evidence.replaceChildren();
  for (const item of profile.evidence || []) {
    const row = evidence.insertRow();
    const weight = item.weight == null ? "" : Number(item.weight).toFixed(1);
    [item.left, item.right, item.rule, weight, fieldWeights(item.fields)].forEach((v) =>
      cell(row, v),
    );
  }
  fill("interactions", profile.interactions.map((item) =>
    [when(item.timestamp), item.channel, item.text, item.source]));
  showConsent(profile.profile_id);
  showSentiment(profile.profile_id, profile.purpose);
  focusOn("profile-name");
}

// -- the pages of the people who run custos -----------------------------------------------

// The consent overview: a stacked bar per purpose (granted, denied or withdrawn, no record)
// above the numbers.
async function consentOverview() {
  showPage("consent");
  try {
    const found = await api("/v1/consent/overview");
    fill("overview", found.purposes.map((p) =>
      [p.purpose, p.basis, p.granted, p.denied_or_withdrawn, p.no_record]));
    $("consent-chart").replaceChildren(...consentChart(found.purposes));
    say("");
    focusOn("consent-title");
  } catch (error) {
    say(error.message);
  }
}

const CONSENT_PARTS = [["granted", "granted"], ["denied_or_withdrawn", "denied or withdrawn"],
  ["no_record", "no record"]];

function consentChart(purposes) {
  const row = 26, left = 190, width = 760, right = 150;
  const height = purposes.length * row + 30;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-labelledby": "consent-chart-title", class: "chart" });
  chart.appendChild(svg("title", { id: "consent-chart-title" },
    "Profiles per purpose that granted, denied or withdrew, or have no consent record"));
  purposes.forEach((p, i) => {
    const total = p.granted + p.denied_or_withdrawn + p.no_record;
    const y = i * row + 4;
    chart.appendChild(svg("text", { x: left - 8, y: y + 14, "text-anchor": "end",
      class: "label" }, p.purpose));
    let at = left;
    for (const [part, words] of CONSENT_PARTS) {
      const share = total ? p[part] / total : 0;
      const w = share * (width - left - right);
      if (w > 0) {
        const bar = svg("rect", { x: at.toFixed(1), y, width: w.toFixed(1), height: row - 8,
          class: `part ${part}` });
        bar.dataset.part = part;
        bar.appendChild(svg("title", {}, `${p.purpose}: ${p[part]} ${words}`));
        chart.appendChild(bar);
      }
      at += w;
    }
    chart.appendChild(svg("text", { x: width - right + 6, y: y + 14, class: "tick" },
      p.basis === "consent" ? `${total ? Math.round((100 * p.granted) / total) : 0}% granted`
        : p.basis.replace(/_/g, " ")));
  });
  const legend = element("figcaption", null, "legend");
  for (const [part, words] of CONSENT_PARTS) {
    const key = element("span", words);
    key.prepend(element("span", null, `swatch ${part}`));
    legend.appendChild(key);
  }
  legend.appendChild(element("span", "right: the share granted, or the lawful basis that " +
    "needs no consent"));
  return [chart, legend];
}

// Sources and purposes (any key): counts and the taxonomy, no personal data.
async function sourcesPage() {
  showPage("sources");
  try {
    const [sources, purposes] = await Promise.all([api("/v1/sources"), api("/v1/purposes")]);
    fill("sources-list", sources.items.map((s) => [s.name, s.kind, s.rows,
      s.last_ingested_at ? when(s.last_ingested_at) : "never", s.quarantine_open]));
    fill("purposes-list", purposes.items.map((p) => [p.name, p.basis.replace(/_/g, " "),
      p.description, p.categories.join(", ") || "none (no personal fields)"]));
    say("");
    focusOn("sources-title");
  } catch (error) {
    say(error.message);
  }
}

// The quarantine (admin keys): open entries per source, then the entries newest first.
async function quarantine(more = false) {
  showPage("quarantine");
  const params = new URLSearchParams({ status: $("quarantine-status").value, limit: "100" });
  if ($("quarantine-source").value) params.set("source", $("quarantine-source").value);
  if (more && state.quarantine.cursor) params.set("cursor", String(state.quarantine.cursor));
  try {
    const page = await api(`/v1/quarantine?${params}`);
    const chips = $("quarantine-sources");
    chips.replaceChildren();
    const select = $("quarantine-source");
    const chosen = select.value;
    select.replaceChildren(new Option("all", ""));
    for (const s of page.sources) {
      const chip = element("button", `${s.source}: ${s.open} open`);
      chip.type = "button";
      chip.dataset.source = s.source;
      chip.addEventListener("click", () => { select.value = s.source; quarantine(); });
      const li = document.createElement("li");
      li.appendChild(chip);
      chips.appendChild(li);
      select.appendChild(new Option(s.source, s.source));
    }
    if (chosen && !page.sources.some((s) => s.source === chosen)) {
      select.appendChild(new Option(chosen, chosen));
    }
    select.value = chosen;
    if (!page.sources.length) chips.appendChild(element("li", "no open entries: nothing to fix"));
    const rows = page.items.map((e) => [e.source,
      [e.file_name, e.line_no ? `line ${e.line_no}` : ""].filter(Boolean).join(", "),
      e.record_id, e.field, e.reason, e.fix, when(e.created_at)]);
    fill("quarantine-list", rows, more);
    if (!more) focusOn("quarantine-title");
    state.quarantine.cursor = page.next_cursor;
    $("quarantine-more").hidden = page.next_cursor == null;
    say("");
  } catch (error) {
    say(error.message);
  }
}

// The audit log (admin keys), filtered by actor, purpose, action and time.
async function auditLog(more = false) {
  showPage("audit");
  const params = new URLSearchParams({ limit: "100" });
  for (const name of ["actor", "purpose", "action"]) {
    const value = $(`audit-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  for (const name of ["since", "until"]) {
    const value = $(`audit-${name}`).value;  // local time, as the browser shows it
    if (value) params.set(name, new Date(value).toISOString());
  }
  if (more && state.audit.cursor) params.set("cursor", String(state.audit.cursor));
  try {
    const found = await api(`/v1/audit?${params}`);
    const rows = found.items.map((e) =>
      [e.id, when(e.at), e.actor, e.action, e.purpose || "", e.subjects]);
    fill("audit-log", rows, more);
    const shown = $("audit-log").tBodies[0].rows.length;
    $("audit-count").textContent = `${shown} entr${shown === 1 ? "y" : "ies"}` +
      (found.next_cursor ? " (older ones follow)" : "");
    state.audit.cursor = found.next_cursor;
    $("audit-more").hidden = found.next_cursor == null;
    say("");
  } catch (error) {
    say(error.message);
  }
}

// A probabilistic link's match weight per compared field, strongest first, e.g.
// "street +14.6, dob +13.7, email −2.3" (field names and weights only, never values).
function fieldWeights(fields) {
  if (!fields) return "";
  return Object.entries(fields)
    .sort((a, b) => b[1] - a[1])
    .map(([name, w]) => `${name} ${w < 0 ? "\u2212" : "+"}${Math.abs(Number(w)).toFixed(1)}`)
    .join(", ");
}

// The review queue (keys bound to identity_curation): pairs resolution scored but did not
// link, strongest first. The API gives record references, profile ids and match weights only;
// a curator compares the two profiles under the key's other purpose, and an admin key decides.
async function reviewQueue() {
  showPage("review");
  const { offset, limit } = state.review;
  const params = new URLSearchParams({ limit: String(limit), offset: String(offset) });
  if ($("review-status").value) params.set("status", $("review-status").value);
  try {
    const page = await api(`/v1/review?${params}`);
    if (!page.items.length && offset > 0) {  // decisions emptied this page: show the one before
      state.review.offset = Math.max(0, offset - limit);
      await reviewQueue();
      return;
    }
    const body = $("review-queue").tBodies[0];
    body.replaceChildren();
    // One scale for the whole page, so bars compare across pairs.
    const weights = page.items.flatMap((item) => Object.values(item.fields || {}));
    const scale = Math.max(10, ...weights.map((w) => Math.abs(Number(w))));
    for (const item of page.items) body.appendChild(reviewRow(item, scale));
    const last = offset + page.items.length;
    $("review-total").textContent = page.total
      ? `${page.total} pair(s) waiting; showing ${offset + 1}\u2013${last}`
      : "no pairs waiting for review";
    $("review-prev").hidden = $("review-next").hidden = page.total <= limit && offset === 0;
    $("review-prev").disabled = offset === 0;
    $("review-next").disabled = page.next_offset == null;
    say("");
  } catch (error) {
    say(error.message);
  }
}

function reviewRow(item, scale) {
  const row = document.createElement("tr");
  row.dataset.pair = String(item.id);
  cell(row, item.id);
  const status = row.insertCell();
  const badge = document.createElement("span");
  badge.className = `status-${item.status}`;
  badge.textContent = item.status;
  status.appendChild(badge);
  cell(row, Number(item.weight).toFixed(1));
  for (const side of [item.left, item.right]) row.appendChild(recordCell(side));
  cell(row, item.reason);
  // the prior odds last: what the total holds besides the fields
  const shown = item.prior == null ? item.fields : { ...item.fields, prior: item.prior };
  row.insertCell().appendChild(weightBars(shown, scale));
  const actions = row.insertCell();
  if (state.scope === "admin") {
    const box = document.createElement("div");
    box.className = "review-actions";
    for (const [verb, label] of [["accept", "Accept"], ["reject", "Reject"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = verb;
      button.textContent = label;
      button.title = verb === "accept" ? "one person: join for good" : "two persons: keep apart";
      button.dataset.pair = String(item.id);
      button.addEventListener("click", () => decide(item, verb, box));
      box.appendChild(button);
    }
    actions.appendChild(box);
  }
  return row;
}

// A record reference, and its profile as a link to the profile view under the key's other
// purpose (what that purpose may see; the guard decides), or identity_curation if it has none.
function recordCell(side) {
  const td = document.createElement("td");
  const record = document.createElement("code");
  record.textContent = side.record;
  td.appendChild(record);
  const profile = document.createElement("span");
  profile.className = "profile-ref";
  if (side.profile_id) {
    const link = profileLink(side.profile_id, side.profile_id, () => {
      const purpose = state.purposes.find((p) => p !== CURATION) || CURATION;
      showPage("search");
      return openProfile(side.profile_id, purpose);
    });
    profile.appendChild(link);
  } else {
    profile.textContent = "in no profile";
  }
  td.appendChild(profile);
  return td;
}

// The match weight of each compared field as a small signed bar: green to the right for
// evidence for the match, red to the left against it (field names and numbers only); a bar
// of half the track is a weight of ``scale``.
function weightBars(fields, scale) {
  const box = document.createElement("div");
  box.className = "weights";
  const entries = Object.entries(fields || {}).map(([name, w]) => [name, Number(w)]);
  for (const [name, w] of entries) {
    const line = document.createElement("div");
    line.className = "weight";
    line.dataset.field = name;
    const label = document.createElement("span");
    label.textContent = name;
    const track = document.createElement("span");
    track.className = "track";
    const bar = document.createElement("span");
    bar.className = `bar ${w < 0 ? "negative" : "positive"}`;
    bar.style.width = `${Math.min(50, (50 * Math.abs(w)) / scale)}%`;
    track.appendChild(bar);
    const signed = `${w < 0 ? "\u2212" : "+"}${Math.abs(w).toFixed(1)}`;
    track.title = `${name} ${signed}`;
    const value = document.createElement("span");
    value.className = "weight-value";
    value.textContent = signed;
    line.append(label, track, value);
    box.appendChild(line);
  }
  return box;
}

// Accept or reject a pair (admin keys bound to identity_curation; the API refuses others), then
// show the queue as it is now. Accepting rebuilds the profiles, which can take a while, and
// renumbers the queue: the records shown are sent along, so a stale id is refused, never
// applied to another pair.
async function decide(item, verb, box) {
  const pair = item.id;
  for (const button of box.querySelectorAll("button")) button.disabled = true;
  const done = $("review-done");
  done.hidden = true;
  try {
    const reason = $("review-reason").value.trim() || `${verb}ed in the web UI`;
    const result = await api(`/v1/review/${encodeURIComponent(pair)}/${verb}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reason, left: item.left.record, right: item.right.record }),
    });
    done.textContent = verb === "accept"
      ? `pair ${pair} accepted: ${result.left.record} and ${result.right.record} are profile ` +
        `${result.profile_id || "(not joined: see the profile's link evidence)"}`
      : `pair ${pair} rejected: ${result.left.record} and ${result.right.record} stay apart`;
    done.hidden = false;
    await reviewQueue();
  } catch (error) {
    for (const button of box.querySelectorAll("button")) button.disabled = false;
    say(error.message);
  }
}

function reviewPage(step) {
  state.review.offset = Math.max(0, state.review.offset + step * state.review.limit);
  $("review-done").hidden = true;
  reviewQueue();
}

// A link to a profile: a click runs `show` (which opens it) and says what went wrong, if anything.
function profileLink(text, profileId, show) {
  const link = element("a", text);
  link.href = "#";
  link.dataset.profile = profileId;
  link.addEventListener("click", async (e) => {
    e.preventDefault();
    try {
      await show();
      say("");
    } catch (error) {
      say(error.message);
    }
  });
  return link;
}

async function openProfile(profileId, purpose) {
  const query = encodeURIComponent(purpose);
  showProfile(await api(`/v1/profiles/${encodeURIComponent(profileId)}?purpose=${query}`));
}

// Split one record off the profile for good (admin keys; the API refuses others), then show
// the profile again as it is now.
async function unmerge(profile, record) {
  try {
    await api(`/v1/profiles/${encodeURIComponent(profile.profile_id)}/unmerge`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ records: [record], reason: "split off in the web UI" }),
    });
    say("");
    await openProfile(profile.profile_id, profile.purpose);
  } catch (error) {
    say(error.message);
  }
}

async function find(event) {
  event.preventDefault();
  $("profile").hidden = true;
  const purpose = encodeURIComponent($("purpose").value);
  try {
    const body = { [$("kind").value]: $("value").value };
    const profile = await api(`/v1/profiles/lookup?purpose=${purpose}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    say("");
    showProfile(profile);
  } catch (error) {
    say(error.message);
  }
}

// The report is a standalone page with no scripts; it is shown in a sandboxed frame (no
// scripts, an opaque origin). A frame's src cannot carry the key, so the page is fetched with it
// and given to a new frame (made when shown: a frame loaded while hidden stays blank).
async function dsrAccess(event) {
  event.preventDefault();
  const view = $("dsr-view");
  const status = $("dsr-status");
  view.replaceChildren();
  status.hidden = true;
  try {
    const made = await api("/v1/dsr/access", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: $("dsr-key").value }),
    });
    const page = await apiText(`/v1/dsr/${encodeURIComponent(made.request)}/report.html`);
    const frame = document.createElement("iframe");
    frame.id = "dsr-report";
    frame.dataset.testid = "dsr-report";
    frame.title = "access report";
    frame.setAttribute("sandbox", "");
    frame.srcdoc = page;
    view.appendChild(frame);
    status.textContent = `request ${made.request} (${made.state}), profile ${made.profile_id}`;
    status.hidden = false;
    say("");
  } catch (error) {
    say(error.message);
  }
}

$("key-form").addEventListener("submit", (e) => { e.preventDefault(); useKey($("key").value); });
$("search-form").addEventListener("submit", find);
$("name-form").addEventListener("submit", (e) => {
  e.preventDefault();
  listProfiles($("q").value.trim());
});
$("list").addEventListener("click", () => { $("q").value = ""; listProfiles(""); });
$("purpose").addEventListener("change", () => {
  if (!$("results").hidden) listProfiles(state.results.query);
});
$("results-prev").addEventListener("click", () => resultsPage(-1));
$("results-next").addEventListener("click", () => resultsPage(1));
$("dsr-form").addEventListener("submit", dsrAccess);
$("nav-search").addEventListener("click", () => { showPage("search"); focusOn("search-title"); });
$("nav-quarantine").addEventListener("click", () => quarantine());
$("quarantine-form").addEventListener("submit", (e) => e.preventDefault());
$("quarantine-source").addEventListener("change", () => quarantine());
$("quarantine-status").addEventListener("change", () => quarantine());
$("quarantine-more").addEventListener("click", () => quarantine(true));
$("nav-consent").addEventListener("click", consentOverview);
$("nav-sources").addEventListener("click", sourcesPage);
$("nav-audit").addEventListener("click", () => { auditLog(); focusOn("audit-title"); });
$("audit-form").addEventListener("submit", (e) => { e.preventDefault(); auditLog(); });
$("audit-form").addEventListener("reset", () => setTimeout(() => auditLog(), 0));
$("audit-more").addEventListener("click", () => auditLog(true));
$("nav-review").addEventListener("click", () => {
  $("review-done").hidden = true;
  reviewQueue();
});
$("review-form").addEventListener("submit", (e) => e.preventDefault());
$("review-status").addEventListener("change", () => {
  state.review.offset = 0;
  reviewPage(0);
});
$("review-prev").addEventListener("click", () => reviewPage(-1));
$("review-next").addEventListener("click", () => reviewPage(1));
if (state.key) useKey(state.key);
