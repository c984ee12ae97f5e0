// The custos web UI: a thin page over the REST API. Every request carries the API key as a
// Bearer token; the API's guard decides what is shown. Values are written with textContent
// only (never as HTML).
"use strict";
const state = {
  key: sessionStorage.getItem("custos-key") || "",
  scope: "",
  purposes: [],
  review: { offset: 0, limit: 50 },
};
const CURATION = "identity_curation";
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, ...(options.headers || {}) };
  const answer = await fetch(path, { ...options, headers });
  const body = answer.status === 204 ? {} : await answer.json();
  if (!answer.ok) {
    const error = body.error || {};
    throw new Error(`${answer.status}: ${error.message || "request failed"}` +
      (error.hint ? ` (${error.hint})` : ""));
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

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  row.appendChild(td);
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
    $("nav-consent").hidden = !(me.scope === "admin" || me.purposes.includes("consent_management"));
    $("nav-audit").hidden = me.scope !== "admin";
    $("nav-review").hidden = !me.purposes.includes(CURATION);
    $("review-reason-label").hidden = me.scope !== "admin";
    showPage("search");
    say("");
  } catch (error) {
    sessionStorage.removeItem("custos-key");
    say(error.message);
  }
}

// One page at a time: the search (with the profile and the access requests), the consent
// overview, the audit log or the review queue.
function showPage(name) {
  const search = name === "search";
  $("search").hidden = !search;
  $("dsr").hidden = !search || state.scope !== "admin";
  if (!search) {
    $("results").hidden = true;
    $("profile").hidden = true;
  }
  $("consent-overview").hidden = name !== "consent";
  $("audit").hidden = name !== "audit";
  $("review").hidden = name !== "review";
}

function fill(table, rows) {
  const body = $(table).tBodies[0];
  body.replaceChildren();
  for (const values of rows) {
    const row = body.insertRow();
    values.forEach((v) => cell(row, v));
  }
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
      [purpose, s.status, s.since || "", s.basis, s.allowed ? "yes" : "no"]));
    fill("consent-history", found.ledger.map((e) =>
      [e.id, e.timestamp, e.purpose, e.status, e.source, e.method]));
  } catch (error) {
    note.textContent = error.message;
    note.hidden = false;
  }
}

// Sentiment is shown when the profile's purpose may use it and there is some.
async function showSentiment(profileId, purpose) {
  const box = $("sentiment");
  box.hidden = true;
  try {
    const query = encodeURIComponent(purpose);
    const found = await api(`/v1/profiles/${encodeURIComponent(profileId)}/sentiment?purpose=${query}`);
    if (!found.timeline.length) return;
    $("mood").textContent = found.mood == null ? "unknown" : String(found.mood);
    fill("sentiment-timeline", found.timeline.map((e) => [e.at, e.channel, e.label, e.score]));
    box.hidden = false;
  } catch (error) {
    box.hidden = true;
  }
}

async function consentOverview() {
  showPage("consent");
  try {
    const found = await api("/v1/consent/overview");
    fill("overview", found.purposes.map((p) =>
      [p.purpose, p.basis, p.granted, p.denied_or_withdrawn, p.no_record]));
    say("");
  } catch (error) {
    say(error.message);
  }
}

async function auditLog() {
  showPage("audit");
  try {
    const found = await api("/v1/audit?limit=100");
    fill("audit-log", found.items.map((e) =>
      [e.id, e.at, e.actor, e.action, e.purpose || "", e.subjects]));
    say("");
  } catch (error) {
    say(error.message);
  }
}

function showProfile(profile) {
  $("results").hidden = true;
  $("profile").hidden = false;
  $("profile-id").textContent = profile.profile_id;
  $("profile-purpose").textContent = profile.purpose;
  const golden = $("golden").tBodies[0];
  golden.replaceChildren();
  for (const item of profile.golden) {
    const row = golden.insertRow();
    [item.attribute, item.value, item.source, item.record_id].forEach((v) => cell(row, v));
  }
  const identifiers = $("identifiers");
  identifiers.replaceChildren();
  for (const [kind, values] of Object.entries(profile.identifiers)) {
    const li = document.createElement("li");
    li.textContent = `${kind}: ${values.join(", ")}`;
    identifiers.appendChild(li);
  }
  const records = $("records").tBodies[0];
  records.replaceChildren();
  for (const item of profile.records || []) {
    const row = records.insertRow();
    [item.source, item.record_id].forEach((v) => cell(row, v));
    const td = row.insertCell();
    if (state.scope === "admin") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "unmerge";
      button.textContent = "unmerge";
      button.dataset.record = `${item.source}:${item.record_id}`;
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
  const interactions = $("interactions").tBodies[0];
  interactions.replaceChildren();
  for (const item of profile.interactions) {
    const row = interactions.insertRow();
    [item.timestamp, item.channel, item.text, item.source].forEach((v) => cell(row, v));
  }
  showConsent(profile.profile_id);
  showSentiment(profile.profile_id, profile.purpose);
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
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = side.profile_id;
    link.dataset.profile = side.profile_id;
    link.addEventListener("click", async (e) => {
      e.preventDefault();
      const purpose = state.purposes.find((p) => p !== CURATION) || CURATION;
      showPage("search");
      try {
        await openProfile(side.profile_id, purpose);
        say("");
      } catch (error) {
        say(error.message);
      }
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

async function list() {
  $("profile").hidden = true;
  const purpose = encodeURIComponent($("purpose").value);
  try {
    const page = await api(`/v1/profiles?purpose=${purpose}&limit=50`);
    const ul = $("profile-list");
    ul.replaceChildren();
    for (const item of page.items) {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = "#";
      link.textContent = `${item.profile_id} ${item.first_name || ""} ${item.last_name || ""}`;
      link.addEventListener("click", async (e) => {
        e.preventDefault();
        try {
          showProfile(await api(`/v1/profiles/${item.profile_id}?purpose=${purpose}`));
        } catch (error) {
          say(error.message);
        }
      });
      li.appendChild(link);
      ul.appendChild(li);
    }
    $("results").hidden = false;
    say(page.items.length ? "" : "no profile this purpose may see");
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
$("list").addEventListener("click", list);
$("dsr-form").addEventListener("submit", dsrAccess);
$("nav-search").addEventListener("click", () => showPage("search"));
$("nav-consent").addEventListener("click", consentOverview);
$("nav-audit").addEventListener("click", auditLog);
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
