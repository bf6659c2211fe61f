// The settings screen: profile, usage against the tier's allowances, bring-your-own-key
// (keys, endpoints and models under /api/providers/) and personal access tokens (/api/tokens). Secrets are only ever shown masked, as
// the server returns them; a key typed here is sent once and the field is cleared.

import { api } from "./lib/api.js";
import { el } from "./lib/dom.js";

const $ = (id) => document.getElementById(id);
let profile = null;
let endpoints = [];

function say(id, message, { error = false } = {}) {
  $(id).textContent = message || "";
  $(id).classList.toggle("error", error);
}

function problem(error) {
  const fields = Object.entries(error.fields || {}).map(([name, messages]) => `${name}: ${messages.join(" ")}`);
  return [error.message, ...fields].join(" ");
}

function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// --- Profile and usage ------------------------------------------------------------------------
function drawUsage(usage, tier) {
  $("usage-tier").textContent = `Plan: ${tier}. Allowances refill continuously.`;
  const rows = [["messages", "Messages"], ["tokens", "Model tokens"]].map(([kind, label]) => {
    const bucket = usage[kind];
    const share = bucket.capacity ? Math.max(0, Math.min(1, bucket.available / bucket.capacity)) : 0;
    const bar = el("span");
    bar.style.width = `${Math.round(share * 100)}%`;
    return el(
      "div",
      { class: `usage-${kind}` },
      el("div", { text: `${label}: ${bucket.available.toLocaleString()} of ${bucket.capacity.toLocaleString()} available now (refills ${bucket.per_minute.toLocaleString()} per minute)` }),
      el("div", { class: "meter", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": bucket.capacity, "aria-valuenow": bucket.available }, bar),
    );
  });
  $("usage").replaceChildren(...rows);
}

async function loadProfile() {
  profile = await api("/api/me");
  $("profile-email").textContent = profile.is_guest ? "Guest account" : `Signed in as ${profile.email}`;
  $("display-name").value = profile.display_name;
  $("custom-instructions").value = profile.custom_instructions;
  drawUsage(profile.usage, profile.tier);
  $("key-provider").replaceChildren(...profile.key_providers.map((provider) => el("option", { value: provider.slug, text: provider.name })));
  for (const form of document.querySelectorAll("[data-needs-account]")) {
    for (const control of form.elements) control.disabled = profile.is_guest;
  }
}

$("profile-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const body = { display_name: $("display-name").value, custom_instructions: $("custom-instructions").value };
    profile = await api("/api/me", { method: "PATCH", body });
    say("profile-status", "Saved.");
  } catch (error) {
    say("profile-status", problem(error), { error: true });
  }
});

// --- Keys, endpoints, models ------------------------------------------------------------------
function row(label, secret, actions) {
  return el("li", {}, el("span", {}, el("strong", { text: label }), " ", secret ? el("code", { class: "masked", text: secret }) : null), el("div", { class: "row-actions" }, actions));
}

function tester(path, statusId) {
  return el("button", { type: "button", class: "ghost", text: "Test", onclick: async () => {
    say(statusId, "Testing…");
    try {
      const answer = await api(path, { method: "POST" });
      say(statusId, `It works: ${answer.models.length} model(s) available${answer.models.length ? ` (${answer.models.slice(0, 8).join(", ")}${answer.models.length > 8 ? ", …" : ""})` : ""}.`);
    } catch (error) {
      say(statusId, problem(error), { error: true });
    }
  } });
}

function remover(path, statusId, what) {
  return el("button", { type: "button", class: "ghost", text: "Remove", "aria-label": `Remove ${what}`, onclick: async () => {
    if (!confirm(`Remove ${what}?`)) return;
    try {
      await api(path, { method: "DELETE" });
      say(statusId, "Removed.");
      await loadByok();
    } catch (error) {
      say(statusId, problem(error), { error: true });
    }
  } });
}

async function loadByok() {
  const [keys, endpointList, models] = await Promise.all([
    api("/api/providers/keys/"),
    api("/api/providers/endpoints/"),
    api("/api/providers/models/"),
  ]);
  endpoints = endpointList.endpoints;
  $("keys").replaceChildren(...keys.keys.map((key) => row(key.provider_name, key.api_key, [tester(`/api/providers/keys/${key.id}/test/`, "keys-status"), remover(`/api/providers/keys/${key.id}/`, "keys-status", `the ${key.provider_name} key`)])));
  if (!keys.keys.length) $("keys").append(el("li", { class: "muted", text: "No keys yet." }));
  $("endpoints").replaceChildren(...endpoints.map((endpoint) => row(`${endpoint.name} · ${endpoint.base_url}`, endpoint.api_key, [tester(`/api/providers/endpoints/${endpoint.id}/test/`, "endpoints-status"), remover(`/api/providers/endpoints/${endpoint.id}/`, "endpoints-status", `the endpoint ${endpoint.name}`)])));
  if (!endpoints.length) $("endpoints").append(el("li", { class: "muted", text: "No endpoints yet." }));
  $("byok-models").replaceChildren(...models.models.map((model) => row(`${model.display_name} (${model.model_id} → ${model.provider_model_id})`, null, [remover(`/api/providers/models/${model.id}/`, "models-status", model.display_name)])));
  if (!models.models.length) $("byok-models").append(el("li", { class: "muted", text: "No models yet." }));
  const sources = [
    ...keys.keys.map((key) => el("option", { value: `provider:${key.provider}`, text: `${key.provider_name} (your key)` })),
    ...endpoints.map((endpoint) => el("option", { value: `endpoint:${endpoint.id}`, text: `${endpoint.name} (endpoint)` })),
  ];
  $("model-source").replaceChildren(...(sources.length ? sources : [el("option", { value: "", text: "Add a key or an endpoint first" })]));
}

function submitter(formId, statusId, toBody, path) {
  $(formId).addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      await api(path, { method: "POST", body: toBody(formData(form)) });
      form.reset();
      say(statusId, "Added.");
      await loadByok();
    } catch (error) {
      say(statusId, problem(error), { error: true });
    }
  });
}

submitter("key-form", "keys-status", (data) => ({ provider: data.provider, api_key: data.api_key }), "/api/providers/keys/");
submitter("endpoint-form", "endpoints-status", (data) => ({ name: data.name, base_url: data.base_url, api_key: data.api_key }), "/api/providers/endpoints/");
submitter("model-form", "models-status", (data) => {
  const [kind, value] = (data.source || ":").split(":");
  const body = { slug: data.slug, display_name: data.display_name, provider_model_id: data.provider_model_id };
  if (kind === "endpoint") body.endpoint = Number(value);
  else body.provider = value;
  return body;
}, "/api/providers/models/");

// --- Personal access tokens (/api/tokens): a new token's secret is shown once, here ------------
const DAY = 24 * 60 * 60 * 1000;

function when(stamp) {
  return stamp ? new Date(stamp).toLocaleDateString() : null;
}

async function loadTokens() {
  const tokens = await api("/api/tokens");
  $("tokens").replaceChildren(...tokens.map((token) => {
    const expiry = token.expires_at ? `expires ${when(token.expires_at)}` : "never expires";
    const used = token.last_used_at ? `last used ${when(token.last_used_at)}` : "never used";
    const label = `${token.name} · ${token.scope === "chat" ? "read and chat" : "read"} · ${expiry} · ${used}`;
    const revoke = el("button", { type: "button", class: "ghost", text: "Revoke", "aria-label": `Revoke the token ${token.name}`, onclick: async () => {
      if (!confirm(`Revoke the token ${token.name}? Programs using it stop working.`)) return;
      try {
        await api(`/api/tokens/${token.id}`, { method: "DELETE" });
        say("tokens-status", "Revoked.");
        await loadTokens();
      } catch (error) {
        say("tokens-status", problem(error), { error: true });
      }
    } });
    return row(label, `${token.prefix}…`, [revoke]);
  }));
  if (!tokens.length) $("tokens").append(el("li", { class: "muted", text: "No tokens yet." }));
}

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const data = formData(form);
  const body = { name: data.name, scope: data.scope };
  if (data.expiry) body.expires_at = new Date(Date.now() + Number(data.expiry) * DAY).toISOString();
  try {
    const made = await api("/api/tokens", { method: "POST", body });
    form.reset();
    $("token-secret").value = made.secret;
    $("token-made").hidden = false;
    $("token-secret").select();
    say("tokens-status", "Made.");
    await loadTokens();
  } catch (error) {
    say("tokens-status", problem(error), { error: true });
  }
});

$("token-copy").addEventListener("click", async () => {
  $("token-secret").select();
  try {
    await navigator.clipboard.writeText($("token-secret").value);
    say("tokens-status", "Copied.");
  } catch {
    say("tokens-status", "Select the token and copy it.");
  }
});

loadProfile().then(() => Promise.all([loadByok(), loadTokens()])).catch((error) => say("profile-status", problem(error), { error: true }));
