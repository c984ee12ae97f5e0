// The custos web UI: a thin page over the REST API. Every request carries the API key as a
// Bearer token; the API's guard decides what is shown. Values are written with textContent
// only (never as HTML).
"use strict";
const state = { key: sessionStorage.getItem("custos-key") || "", scope: "", purposes: [] };
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
    showPage("search");
    say("");
  } catch (error) {
    sessionStorage.removeItem("custos-key");
    say(error.message);
  }
}

// One page at a time: the search (with the profile and the access requests), the consent
// overview or the audit log.
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
if (state.key) useKey(state.key);
