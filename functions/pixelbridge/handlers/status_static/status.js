// PixelBridge status page. Every value from the API reaches the page as text (textContent, never
// parsed as HTML); the operator token lives only in this tab's sessionStorage.
"use strict";

(() => {
  const TOKEN_KEY = "pixelbridge.operatorToken";
  const REFRESH_MS = 5000;
  const PAGES = 5; // up to 500 builds, newest first
  const DETAILS_PER_REFRESH = 12; // in-flight builds whose slot time is read from their timeline
  const ACTIVE = new Set([
    "received", "stored", "converting", "converted", "queued",
    "uploading", "processing", "approved", "distributing",
  ]);
  const FAILED = new Set(["failed", "rejected"]);
  const $ = (id) => document.getElementById(id);

  let selected = null; // buildId shown in the detail panel
  let timer = null;
  let refreshing = false;
  let confirmAction = null;

  class ApiError extends Error {
    constructor(status, error, message) {
      super(message);
      this.status = status;
      this.error = error;
    }
  }

  // -- DOM helpers: children are nodes or strings (strings become text nodes) --------------------
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, String(value));
    }
    append(node, ...children);
    return node;
  }

  function append(node, ...children) {
    for (const child of children) {
      if (child !== undefined && child !== null) node.append(child);
    }
  }

  function when(isoTime) {
    if (!isoTime) return "";
    const at = new Date(isoTime);
    if (Number.isNaN(at.getTime())) return String(isoTime);
    const seconds = Math.round((Date.now() - at.getTime()) / 1000);
    const ago = Math.abs(seconds) < 90 ? `${Math.abs(seconds)} s`
      : Math.abs(seconds) < 5400 ? `${Math.round(Math.abs(seconds) / 60)} min`
        : `${Math.round(Math.abs(seconds) / 3600)} h`;
    return `${at.toLocaleString()} (${seconds >= 0 ? `${ago} ago` : `in ${ago}`})`;
  }

  function badge(status) {
    const kind = status === "live" ? "live" : FAILED.has(status) ? "bad" : ACTIVE.has(status) ? "wait" : "gone";
    return el("span", { class: `badge ${kind}`, text: status });
  }

  function buildButton(buildId) {
    return el("button", {
      type: "button",
      class: "link mono",
      "data-build": buildId,
      "aria-label": `Show build ${buildId}`,
      text: buildId,
      onclick: () => showBuild(buildId, true),
    });
  }

  // -- API -----------------------------------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}` };
    const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let payload = {};
    try {
      payload = await response.json();
    } catch {
      payload = {};
    }
    if (!response.ok) {
      throw new ApiError(response.status, payload.error || "error", payload.message || `HTTP ${response.status}`);
    }
    return payload;
  }

  async function listBuilds() {
    const builds = [];
    let next = null;
    for (let page = 0; page < PAGES; page += 1) {
      const query = new URLSearchParams({ limit: "100" });
      if (next) query.set("next", next);
      const answer = await api("GET", `/builds?${query}`);
      builds.push(...(answer.builds || []));
      next = answer.next;
      if (!next) break;
    }
    return builds;
  }

  const path = (...parts) => `/${parts.map(encodeURIComponent).join("/")}`;

  // -- what a route serves (the same rule as the API's rollback: most recently made live wins) -----
  function liveHistory(builds) {
    return builds
      .filter((b) => b.uploadId && b.liveSince)
      .sort((a, b) => (a.liveSince < b.liveSince ? 1 : a.liveSince > b.liveSince ? -1 : 0));
  }

  function groupByRoute(builds) {
    const routes = new Map();
    for (const build of builds) {
      const key = build.route || "";
      if (!routes.has(key)) routes.set(key, []);
      routes.get(key).push(build);
    }
    return [...routes.entries()].sort(([a], [b]) => (a === "" ? 1 : b === "" ? -1 : a.localeCompare(b)));
  }

  function lastSlot(record) {
    const entries = (record.timeline || []).filter((entry) => entry.event === "slot reserved");
    return entries.length ? entries[entries.length - 1].detail || "" : "";
  }

  function waitingNote(build, record) {
    if (!record) return "";
    if (build.status === "approved" && (record.release || {}).policy === "hold" && !record.releaseRequestedAt) {
      return "held: approved by Streampixel, waiting for an operator to release it";
    }
    if (build.status === "queued" || (build.status === "approved" && record.waitingFor === "slot")) {
      // "upload slot at 2026-01-01T00:02:00Z (in 40 s)": show the slot time, relative to now.
      const slot = /^(\S+) slot at (\S+)/.exec(lastSlot(record));
      return slot ? `waiting for its ${slot[1]} slot at ${when(slot[2])}` : "waiting for a slot";
    }
    return record.waitingFor ? `waiting for ${record.waitingFor}` : "";
  }

  function section(title, items) {
    if (!items.length) return null;
    return el("div", {}, el("h4", { class: "muted", text: title }), el("ul", {}, ...items));
  }

  function routeCard(routeId, builds, records) {
    const title = routeId || "(not routed)";
    const card = el("article", { class: "card route", "aria-label": `Route ${title}`, "data-route": routeId });
    card.append(el("h3", { text: routeId ? `Route ${routeId}` : "Not routed" }));
    const history = liveHistory(builds);
    const current = history[0];
    if (current) {
      card.append(el("p", { class: "now", "data-live": current.buildId },
        "Live now: ", buildButton(current.buildId), ` since ${when(current.liveSince)}`));
      if (current.uploadId) card.append(el("p", { class: "muted mono", text: `uploadId ${current.uploadId}` }));
    } else if (routeId) {
      card.append(el("p", { class: "muted", text: "Nothing live yet." }));
    }
    const active = builds.filter((b) => ACTIVE.has(b.status));
    append(card, section("On its way", active.map((b) => el("li", {}, badge(b.status), " ", buildButton(b.buildId),
      el("span", { class: "muted", text: ` ${waitingNote(b, records.get(b.buildId))}` })))));
    const failed = builds.filter((b) => FAILED.has(b.status)).slice(0, 5);
    append(card, section("Did not go live", failed.map((b) => el("li", {}, badge(b.status), " ", buildButton(b.buildId),
      el("span", { class: "muted", text: ` ${b.objection || b.error || ""}` })))));
    const earlier = history.slice(1, 6);
    append(card, section("Live before", earlier.map((b) => el("li", { "data-earlier": b.buildId },
      buildButton(b.buildId), el("span", { class: "muted", text: ` was made live ${when(b.liveSince)}` })))));
    const superseded = builds.filter((b) => b.status === "superseded").slice(0, 5);
    append(card, section("Superseded (replaced by a newer build before going live)", superseded.map((b) =>
      el("li", {}, buildButton(b.buildId), el("span", { class: "muted", text: ` ${b.error || ""}` })))));
    const skipped = builds.filter((b) => b.status === "skipped").slice(0, 5);
    append(card, section("Skipped", skipped.map((b) => el("li", {}, buildButton(b.buildId),
      el("span", { class: "muted", text: ` ${b.error || ""}` })))));
    if (routeId && history.length >= 2) {
      const target = history[1];
      card.append(el("div", { class: "actions" }, el("button", {
        type: "button",
        "data-action": "rollback",
        text: `Roll back to ${target.buildId}`,
        onclick: () => ask(
          `Roll route ${routeId} back to build ${target.buildId}? Streampixel will serve its upload ` +
          `${target.uploadId} again instead of build ${current.buildId}.`,
          async () => {
            const answer = await api("POST", path("routes", routeId, "rollback"), { uploadId: target.uploadId });
            return `Rollback of ${routeId} to ${answer.buildId} started.`;
          },
        ),
      })));
    }
    return card;
  }

  // A refresh rebuilds the cards: keep keyboard focus on the same button (same route, build, action).
  function focusedControl() {
    const active = document.activeElement;
    const area = active && active.closest ? active.closest("#routes, #detail-actions") : null;
    if (!area) return null;
    const card = active.closest("[data-route]");
    return { area: area.id, route: card ? card.dataset.route : null, build: active.dataset.build, action: active.dataset.action };
  }

  function restoreFocus(control) {
    if (!control) return;
    let scope = $(control.area);
    if (control.route !== null) scope = scope.querySelector(`[data-route="${CSS.escape(control.route)}"]`);
    const selector = control.build ? `button[data-build="${CSS.escape(control.build)}"]`
      : control.action ? `[data-action="${CSS.escape(control.action)}"]` : null;
    const target = scope && selector ? scope.querySelector(selector) : null;
    if (target) target.focus();
  }

  async function render() {
    const control = focusedControl();
    const builds = await listBuilds();
    const active = builds.filter((b) => ACTIVE.has(b.status)).slice(0, DETAILS_PER_REFRESH);
    const records = new Map();
    await Promise.all(active.map(async (b) => {
      try {
        records.set(b.buildId, await api("GET", path("builds", b.buildId)));
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) throw error;
      }
    }));
    const container = $("routes");
    const cards = groupByRoute(builds).map(([routeId, routeBuilds]) => routeCard(routeId, routeBuilds, records));
    container.replaceChildren(...cards);
    if (!cards.length) container.append(el("p", { class: "muted", text: "No builds yet." }));
    if (selected) await showBuild(selected, false);
    restoreFocus(control);
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`;
  }

  // -- one build -----------------------------------------------------------------------------------
  function facts(target, pairs) {
    target.replaceChildren();
    for (const [name, value] of pairs) {
      if (value === undefined || value === null || value === "") continue;
      target.append(el("dt", { text: name }), el("dd", { text: typeof value === "object" ? JSON.stringify(value) : value }));
    }
  }

  async function showBuild(buildId, focus) {
    selected = buildId;
    const record = await api("GET", path("builds", buildId));
    const metadata = record.metadata || {};
    $("detail-title").textContent = `Build ${record.buildId}`;
    facts($("detail-facts"), [
      ["Status", record.status],
      ["Route", record.route],
      ["Arrived by", record.source],
      ["Received", when(record.receivedAt)],
      ["Updated", when(record.updatedAt)],
      ["Live since", when(record.liveSince)],
      ["Upload", record.uploadId],
      ["BuildPixel project", metadata.projectId],
      ["Branch", metadata.branch],
      ["Build type", metadata.buildType],
      ["Release policy", (record.release || {}).policy],
      ["Error", record.error],
    ]);
    const objection = record.objection || "";
    $("detail-objection").hidden = !objection;
    $("detail-objection-text").textContent = objection;
    const actions = [];
    if (record.status === "approved" && (record.release || {}).policy === "hold" && !record.releaseRequestedAt) {
      actions.push(el("button", {
        type: "button", class: "primary", "data-action": "release", text: "Release this build",
        onclick: () => ask(`Release build ${buildId}? Streampixel will make it live on route ${record.route}.`,
          async () => {
            await api("POST", path("builds", buildId, "release"));
            return `Release of ${buildId} started.`;
          }),
      }));
    }
    if (FAILED.has(record.status)) {
      actions.push(el("button", {
        type: "button", "data-action": "retry", text: "Retry this build",
        onclick: () => ask(`Retry build ${buildId} from its last good stage?`, async () => {
          const answer = await api("POST", path("builds", buildId, "retry"));
          return `Retry of ${buildId} started (${answer.action}).`;
        }),
      }));
    }
    $("detail-actions").replaceChildren(...actions);
    $("detail-timeline").replaceChildren(...(record.timeline || []).map((entry) => el("li", {},
      el("span", { class: "when", text: when(entry.at) }),
      el("strong", { text: entry.event }),
      entry.status ? " " : null, entry.status ? badge(entry.status) : null,
      entry.detail ? el("span", { text: ` ${entry.detail}` }) : null)));
    const manifest = record.manifest || {};
    const manifestFacts = Object.entries(manifest).filter(([key]) => key !== "notes");
    facts($("detail-manifest"), manifestFacts.length ? [
      ...manifestFacts,
      ["notes", (manifest.notes || []).join("; ")],
    ] : [["manifest", "not converted yet"]]);
    $("detail").hidden = false;
    if (focus) $("detail").focus();
  }

  // -- confirmation: every action asks first ------------------------------------------------------
  function ask(question, action) {
    confirmAction = action;
    $("confirm-text").textContent = question;
    $("confirm").showModal();
    $("confirm-no").focus();
  }

  async function confirmed() {
    const action = confirmAction;
    confirmAction = null;
    $("confirm").close();
    if (!action) return;
    try {
      const message = await action();
      notice(message, false);
    } catch (error) {
      notice(error.message, true);
    }
    await refresh();
  }

  function notice(message, isProblem) {
    const problem = $("problem");
    problem.textContent = message;
    problem.hidden = !message;
    problem.classList.toggle("ok", !isProblem);
  }

  // -- token and refresh --------------------------------------------------------------------------
  function showLogin(message) {
    stop();
    $("main").hidden = true;
    $("refresh").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    notice(message || "", true);
    $("token").focus();
  }

  async function refresh() {
    if (refreshing || $("confirm").open) return;
    refreshing = true;
    try {
      await render();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        showLogin("The operator token was not accepted. Paste it again.");
      } else {
        notice(`Could not refresh: ${error.message}`, true);
      }
    } finally {
      refreshing = false;
    }
  }

  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  async function start() {
    $("login").hidden = true;
    $("main").hidden = false;
    $("refresh").hidden = false;
    $("forget").hidden = false;
    notice("", false);
    await refresh();
    stop();
    timer = setInterval(refresh, REFRESH_MS);
  }

  function openWithToken() {
    const token = $("token").value.trim();
    if (!token) {
      notice("Paste the operator token first.", true);
      $("token").focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    start();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("open").addEventListener("click", openWithToken);
    $("token").addEventListener("keydown", (event) => {
      if (event.key === "Enter") openWithToken();
    });
    $("refresh").addEventListener("click", refresh);
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin("");
    });
    $("close-detail").addEventListener("click", () => {
      selected = null;
      $("detail").hidden = true;
      $("main").focus();
    });
    $("confirm-yes").addEventListener("click", confirmed);
    $("confirm-no").addEventListener("click", () => {
      confirmAction = null;
      $("confirm").close();
    });
    $("confirm").addEventListener("close", () => {
      confirmAction = null;
    });
    if (sessionStorage.getItem(TOKEN_KEY)) start();
    else showLogin("");
  });
})();
