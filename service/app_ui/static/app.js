// neckcheck clinician app: one page for the SMART EHR launch, the open-server mode and the demo.
// The service reads the patient's data and decides (POST /app/api/assess); this script only launches,
// shows what the service answered, collects the missing answers and, on the clinician's confirmation,
// saves the transaction the service prepared to the EHR's FHIR server with the clinician's own token.
"use strict";

(function () {
  const root = document.getElementById("app");
  const params = new URLSearchParams(window.location.search);
  const session = { fhirServer: null, patient: null, sample: null, client: null, token: null };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function say(text, kind) {
    let state = document.getElementById("state");
    if (!state) {
      state = el("p", { id: "state", role: "status", "aria-live": "polite" });
      root.prepend(state);
    }
    state.textContent = text;
    state.className = kind || "";
  }

  function problemText(body, fallback) {
    if (body && body.resourceType === "OperationOutcome" && Array.isArray(body.issue)) {
      return body.issue.filter(Boolean).map((i) => i.diagnostics || (i.details && i.details.text) || i.code).join("; ");
    }
    return fallback;
  }

  // ---- one turn: the service reads, assesses and answers with the screen ----
  async function assess(answers) {
    const body = { patient: session.patient };
    if (session.sample) body.sample = session.sample;
    else body.fhirServer = session.fhirServer;
    if (answers) body.answers = answers;
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (session.token) headers.Authorization = "Bearer " + session.token;
    const response = await fetch("/app/api/assess", { method: "POST", headers, body: JSON.stringify(body) });
    const data = await response.json().catch(() => null);
    if (response.status === 401) {
      // every refusal of the token looks the same (expired, revoked, another patient, too few scopes)
      throw new Error("This session is not (or no longer) authorized to read the patient's chart: open the app again from the EHR.");
    }
    if (!response.ok) throw new Error(problemText(data, "The assessment failed (HTTP " + response.status + ")."));
    return data;
  }

  // one turn at a time on screen: an answer that comes back after a newer request was sent is dropped
  let latest = 0;
  async function turn(answers) {
    const mine = ++latest;
    try {
      const view = await assess(answers);
      if (mine === latest) show(view, answers);
    } catch (error) {
      if (mine === latest) say(error.message, "error");
    }
  }

  // ---- the screen ----
  // a count with its noun, singular or plural ("1 record", "3 records")
  function counted(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  // "a, b and c"
  function listed(items) {
    return items.length < 2 ? items.join("") : items.slice(0, -1).join(", ") + " and " + items[items.length - 1];
  }

  // an instant in the browser's own locale and time zone; the ISO form the service sent is the tooltip
  const instant = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const day = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: "UTC" });

  function when(iso) {
    const parsed = new Date(iso);
    if (Number.isNaN(parsed.getTime())) return el("span", { text: iso });
    const shown = /^\d{4}-\d{2}-\d{2}$/.test(iso) ? day.format(parsed) : instant.format(parsed);
    return el("time", { datetime: iso, title: iso, text: shown });
  }

  function patientPanel(view) {
    // who this is, so the result is not read for the wrong chart; nothing is guessed
    const person = view.demographics || {};
    const none = "not on record";
    let age = none;
    if (person.age !== null && person.age !== undefined) age = [counted(person.age, "year", "years")];
    if (person.birthDate) age = age === none ? ["born ", when(person.birthDate)] : age.concat([" (born ", when(person.birthDate), ")"]);
    const row = (label, value) => [el("dt", { text: label }), el("dd", {}, ...[].concat(value))];
    return el("dl", { class: "patient", "data-testid": "patient" },
      ...row("Patient", person.name || "name " + none),
      ...row("Sex", person.sex || none),
      ...row("Age", age),
      ...row("Patient id", view.patient.replace("Patient/", "")));
  }

  function resultPanel(view) {
    // a final result leads with what to do; any other leads with why it is not final and what is missing,
    // never with a reassuring risk
    const final = view.status === "final";
    const title = { final: "Result", preliminary: "Preliminary result" }[view.status] || "No result yet";
    const panel = el("section", { class: "result risk-" + view.risk + (final ? "" : " not-final"), "aria-labelledby": "result-title" });
    const status = el("span", { "data-testid": "status", class: "status-" + view.status.replace(" ", "-"), text: view.status });
    panel.append(el("h2", { id: "result-title", tabindex: "-1", text: title }));
    if (final) {
      panel.append(el("p", { class: "headline", "data-testid": "headline", text: view.action }),
        el("p", {}, "Risk ", el("strong", { "data-testid": "risk", text: view.risk }), " · ", status));
    } else if (view.status === "preliminary") {
      panel.append(el("p", { class: "headline why", role: "note", "data-testid": "headline", text: view.why }),
        el("p", { class: "so-far" }, "So far, on what is recorded: " + view.action + " (risk so far ",
          el("span", { "data-testid": "risk", text: view.risk }), ", ", status, ")."));
    } else {
      panel.append(el("p", { class: "headline why", role: "note", "data-testid": "headline", text: view.why }),
        el("p", { text: view.summary }),
        el("p", { class: "so-far" }, "Risk ", el("span", { "data-testid": "risk", text: view.risk }), " · ", status));
    }
    panel.append(patientPanel(view), el("p", { class: "meta" }, "Assessed as of ", when(view.asOf)));
    return panel;
  }

  // a titled section of the screen; with nothing to list, it says so in one sentence
  function section(name, title, attrs) {
    return el("section", Object.assign({ "aria-labelledby": name + "-title" }, attrs), el("h2", { id: name + "-title", text: title }));
  }

  function listing(name, title, items, empty, fill) {
    const shown = section(name, title);
    shown.append(...(items.length ? fill(items) : [el("p", { text: empty })]));
    return shown;
  }

  function rulesPanel(view) {
    const none = view.status === "no data" ? "No rule can be evaluated without data." : "No escalation rule fired.";
    const shown = listing("rules", "Why", view.rules, none, (rules) => [el("ul", { class: "rules" }, ...rules.map((rule) =>
      el("li", { "data-rule": rule.id },
        el("strong", { text: rule.title }), " (" + rule.risk + "): " + rule.outcome,
        el("blockquote", { text: rule.guideline }))))]);
    if (view.status !== "no data" && view.summary) {
      // the rationale in full, as the RiskAssessment saved to the chart carries it
      shown.append(el("details", { class: "rationale" },
        el("summary", { text: "Full rationale (as saved with the result)" }), el("p", { text: view.summary })));
    }
    return shown;
  }

  function evidenceTable(rows, caption) {
    return el("table", { class: "evidence" },
      el("caption", { text: caption }),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col", text: "Finding" }), el("th", { scope: "col", text: "Value" }), el("th", { scope: "col", text: "Date" }))),
      el("tbody", {}, ...rows.map((item) => el("tr", { "data-fact": item.fact },
        el("th", { scope: "row", text: item.label }),
        el("td", { text: item.value + (item.conflict ? " (" + item.conflict + ")" : "") }),
        el("td", {}, item.date ? when(item.date) : "undated")))));
  }

  function evidencePanel(view) {
    const recorded = view.evidence.filter((item) => !item.answeredHere);
    return listing("evidence", "On record", recorded, "Nothing on record.", (rows) => [
      evidenceTable(rows, "What the chart says, with the date of each record")]);
  }

  function notUsedPanel(view) {
    // what the chart holds that did not count, and why (too old, entered in error, ...): hidden, it would look
    // as though the service had never seen it
    // collapsed: the reasons are there for whoever asks, below what did count
    if (!view.notUsed || view.notUsed.length === 0) return document.createDocumentFragment();
    return listing("not-used", "Not used", view.notUsed, "", (notUsed) => [
      el("details", { "data-testid": "not-used" },
        el("summary", { text: counted(notUsed.length, "record", "records") + " read from the chart but not used for this result: why" }),
        el("ul", { class: "not-used" }, ...notUsed.map((item) => el("li", { text: item.why }))))]);
  }

  function ordersPanel(view) {
    return listing("orders", "Proposed orders", view.orders, "None proposed.", (orders) => [
      el("ul", { class: "orders" }, ...orders.map((order) =>
        el("li", {}, el("span", { class: "draft", text: "Draft proposal" }), " " + order.title + " (" + order.priority + ")"))),
      el("p", { class: "meta", text: "Proposals only: a clinician decides whether to order." })]);
  }

  function question(q, index) {
    const id = "q-" + index;
    const group = el("fieldset", { class: "question", "data-fact": q.fact });
    group.append(el("legend", { text: q.text }));
    if (q.type === "boolean" || q.type === "choice") {
      const known = q.type === "boolean"
        ? [{ code: "true", display: "Yes" }, { code: "false", display: "No" }]
        : q.options;
      const options = known.concat([{ code: "", display: "Not known" }]);  // chosen by mistake: take it back
      options.forEach((option, i) => {
        const input = el("input", { type: "radio", name: q.fact, id: id + "-" + i, value: option.code });
        group.append(el("div", { class: "option" }, input, el("label", { for: id + "-" + i, text: option.display })));
      });
      group.append(el("p", { class: "hint", text: "Not known stays unknown, never \"no\"." }));
    } else {
      group.append(el("label", { for: id, text: "Answer" }),
        el("input", { id, name: q.fact, type: q.type === "integer" ? "number" : "date", min: q.type === "integer" ? 0 : null, inputmode: q.type === "integer" ? "numeric" : null }));
    }
    return group;
  }

  function readAnswers(form, view) {
    const answers = {};
    for (const q of view.ask) {
      const field = form.elements[q.fact];
      if (!field) continue;
      if (field.validity && field.validity.badInput) throw new Error("\"" + q.text + "\": answer a whole number.");
      const value = field.value;
      if (value === "" || value === undefined) continue;
      if (q.type === "boolean") answers[q.fact] = value === "true";
      else if (q.type === "integer") {
        const number = Number(value);
        if (!Number.isInteger(number) || number < 0) throw new Error("\"" + q.text + "\": answer a whole number.");
        answers[q.fact] = number;
      } else answers[q.fact] = value;
    }
    return answers;
  }

  function askPanel(view, answered) {
    const needed = view.ask.filter((q) => q.needed !== false);
    const also = view.ask.filter((q) => q.needed === false);
    const shown = section("ask", "Ask the patient", { class: "ask" });
    shown.append(el("p", { text: needed.length
      ? "Only what the assessment is missing. Submitting reassesses with these answers."
      : "The result is already decided; record what the patient says about the remaining urgent signs." }));
    const form = el("form", { novalidate: true });
    const list = el("div", { "data-testid": "ask" });
    needed.forEach((q, i) => list.append(question(q, i)));
    form.append(list);
    if (also.length) {
      // once one urgent sign is present the others cannot change the result, but stay answerable
      const more = el("div", { "data-testid": "ask-also", role: "group", "aria-labelledby": "ask-also-title" },
        el("h3", { id: "ask-also-title", text: "Also record (cannot change this result)" }));
      also.forEach((q, i) => more.append(question(q, needed.length + i)));
      form.append(more);
    }
    const submit = el("button", { type: "submit", "data-testid": "submit-answers", text: "Submit answers and reassess" });
    form.append(submit);
    form.addEventListener("input", () => document.dispatchEvent(new Event("neckcheck:unsaved")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      let answers;
      try {
        answers = Object.assign({}, answered, readAnswers(form, view));
      } catch (error) {
        say(error.message, "error");
        return;
      }
      submit.disabled = true;
      say("Reassessing…");
      await turn(answers);
      submit.disabled = false;
    });
    shown.append(form);
    return shown;
  }

  function answeredPanel(view, answered) {
    // the clinician's own answers, apart from the chart: they are not on record until saved
    const given = Object.keys(answered || {}).filter((fact) => answered[fact] !== null);
    if (!given.length) return null;
    const rows = view.evidence.filter((item) => item.answeredHere);
    const shown = section("given", "Your answers", { "data-testid": "your-answers" });
    shown.append(el("p", { text: counted(given.length, "answer", "answers") + " given here in this session: "
      + "part of this result, not on record until saved." }));
    if (rows.length) shown.append(evidenceTable(rows, "Answered here, with the time of this session"));
    const clear = el("button", { type: "button", class: "secondary", "data-testid": "clear-answers", text: "Clear my answers and start again" });
    clear.addEventListener("click", async () => {
      clear.disabled = true;
      say("Reassessing without your answers…");
      await turn(null);
    });
    shown.append(clear);
    return shown;
  }

  function savePanel(view) {
    const preliminary = view.status !== "final";
    const shown = section("save", "Save to the chart", { class: "save" });
    const count = view.save.entry.length;
    const answer = el("div", { id: "save-answer", role: "status", "aria-live": "polite" });
    const button = el("button", { type: "button", "data-testid": "save-to-chart",
      text: preliminary ? "Save preliminary result to chart…" : "Save to chart…" });
    const confirm = el("div", { class: "confirm", hidden: true, role: "group", "aria-labelledby": "confirm-text" });
    const types = view.save.entry.map((e) => e.resource.resourceType);
    const orders = types.filter((t) => t === "ServiceRequest").length;
    const kinds = [];
    if (types.includes("QuestionnaireResponse")) kinds.push("your answers");
    if (types.includes("RiskAssessment")) kinds.push("the " + view.status + " risk assessment");
    if (orders) kinds.push(orders === 1 ? "a draft order" : orders + " draft orders");
    const what = counted(count, "record", "records") + ": " + listed(kinds);
    const text = [];
    if (preliminary) text.push(view.why);  // what is missing, in the engine's words
    if (session.sample) {
      text.push("This would save " + what + ". Not saved: the demo has no FHIR server to save to; the transaction is shown instead.");
    } else {
      text.push((preliminary ? "Save the preliminary result, " : "Save ") + what + ", to " + session.fhirServer + "?");
    }
    const unsaved = el("p", { class: "hint", hidden: true, text: "Submit or clear the answers above first: they are not part of this result yet." });
    document.addEventListener("neckcheck:unsaved", () => { button.disabled = true; unsaved.hidden = false; confirm.hidden = true; });
    confirm.append(
      el("p", { id: "confirm-text", text: text.join(" ") }),
      el("button", { type: "button", "data-testid": "confirm-save", text: session.sample ? "Show the transaction" : "Yes, save" }),
      el("button", { type: "button", class: "secondary", "data-testid": "cancel-save", text: "Cancel" }));
    button.addEventListener("click", () => {
      confirm.hidden = false;
      confirm.querySelector("[data-testid=confirm-save]").focus();
    });
    confirm.querySelector("[data-testid=cancel-save]").addEventListener("click", () => {
      confirm.hidden = true;
      button.focus();
    });
    confirm.querySelector("[data-testid=confirm-save]").addEventListener("click", async () => {
      confirm.hidden = true;
      button.disabled = true;
      await save(view.save, answer);
      button.disabled = false;
    });
    shown.append(button, unsaved, confirm, answer);
    return shown;
  }

  async function save(transaction, answer) {
    try {
      await post(transaction, answer);
    } catch (error) {
      answer.replaceChildren(el("p", { class: "error", "data-testid": "save-result", text: "Saving failed: " + (error.message || error) }));
    }
  }

  async function post(transaction, answer) {
    answer.replaceChildren();
    if (session.sample) {
      answer.append(el("p", { "data-testid": "save-result", text: "Not saved: the demo has no FHIR server to save to. This is the transaction an EHR's FHIR server would receive:" }),
        el("pre", { class: "json", tabindex: "0", text: JSON.stringify(transaction, null, 2) }));
      return;
    }
    answer.append(el("p", { text: "Saving…" }));
    let response;
    let data = null;
    try {
      const headers = { "Content-Type": "application/fhir+json", Accept: "application/fhir+json" };
      if (session.token) headers.Authorization = "Bearer " + session.token;
      response = await fetch(session.fhirServer, { method: "POST", headers, body: JSON.stringify(transaction) });
      data = await response.json().catch(() => null);
    } catch (error) {
      answer.replaceChildren(el("p", { class: "error", "data-testid": "save-result", text: "The FHIR server could not be reached: " + error.message }));
      return;
    }
    if (!response.ok) {
      answer.replaceChildren(el("p", { class: "error", "data-testid": "save-result",
        text: "The FHIR server refused the save (HTTP " + response.status + "): " + problemText(data, "no reason given") }));
      return;
    }
    const list = el("ul", { "data-testid": "save-entries" });
    const entries = data && Array.isArray(data.entry) ? data.entry : [];
    for (const entry of entries) {
      const r = (entry && entry.response) || {};
      list.append(el("li", { text: (r.status || "?") + " " + (r.location || "") }));
    }
    answer.replaceChildren(el("p", { "data-testid": "save-result", class: "ok", text: "Saved: the FHIR server answered HTTP " + response.status + "." }), list);
  }

  // the page's top: its title, in the demo the way back to the samples, and the status line
  function top() {
    const parts = [el("h1", { text: "Facial numbness with neck pain: when to escalate" })];
    if (session.sample && root.dataset.demoList) {
      parts.push(el("nav", { "aria-label": "Demo" },
        el("a", { href: root.dataset.demoList, "data-testid": "demo-list", text: "← All sample patients" })));
    }
    parts.push(el("p", { id: "state", role: "status", "aria-live": "polite" }));
    root.replaceChildren(...parts);
  }

  function show(view, answered) {
    top();
    say({ final: "Final result.", preliminary: "Preliminary result: questions to ask below." }[view.status]
      || "No result yet: questions to ask below.");
    root.append(resultPanel(view));
    if (view.ask.length) root.append(askPanel(view, answered || {}));
    const given = answeredPanel(view, answered);
    if (given) root.append(given);
    root.append(rulesPanel(view), evidencePanel(view), notUsedPanel(view), ordersPanel(view));
    if (view.save.entry.length) root.append(savePanel(view));
    document.getElementById("result-title").focus({ preventScroll: true });
  }

  // ---- how the page was opened ----
  async function start() {
    if (window.location.pathname.endsWith("/launch")) {
      say("Connecting to the EHR…");
      // SMART App Launch 2.x EHR launch: fhirclient reads iss and launch from the URL, discovers
      // .well-known/smart-configuration and redirects to the authorization endpoint with PKCE (S256).
      await FHIR.oauth2.authorize({
        clientId: root.dataset.clientId,
        scope: root.dataset.scope,
        redirectUri: new URL("/app/", window.location.href).href,
        pkceMode: "required",
      });
      return;
    }
    if (params.get("sample")) {
      session.sample = params.get("sample");
      session.patient = params.get("patient");
      top();
    } else if (params.get("iss") && params.get("patient")) {
      session.fhirServer = params.get("iss").replace(/\/+$/, "");
      session.patient = params.get("patient");
    } else if (params.get("code") || params.get("state") || sessionStorage.getItem("SMART_KEY")) {
      say("Completing the sign-in…");
      const client = await FHIR.oauth2.ready();
      session.client = client;
      session.fhirServer = client.state.serverUrl.replace(/\/+$/, "");
      session.patient = client.patient.id;
      session.token = client.state.tokenResponse && client.state.tokenResponse.access_token;
      if (!session.patient) throw new Error("The EHR did not say which patient to open (no patient in the launch context).");
      window.history.replaceState(null, "", "/app/");
    } else {
      root.append(root.dataset.demoList
        ? el("p", {}, "Open this app from a neckcheck card in your EHR, or try the ",
          el("a", { href: root.dataset.demoList, text: "demo with sample patients" }), ".")
        : el("p", { text: "Open this app from a neckcheck card in your EHR." }));
      say("No patient: nothing to show.");
      return;
    }
    say("Reading the patient's data…");
    await turn(null);
  }

  start().catch((error) => say(error.message || String(error), "error"));
})();
