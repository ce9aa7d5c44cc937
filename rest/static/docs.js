// Interactive API docs, read from /openapi.json: every endpoint with its parameters and
// example values, and a Send button that calls this server and shows the answer.
"use strict";

const $ = (id) => document.getElementById(id);
let SPEC = null;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) node.append(child);
  return node;
}

// Text from the document, with its `inline code` set as code (never as HTML).
function prose(text) {
  const out = document.createDocumentFragment();
  String(text).split("`").forEach((part, i) => {
    if (part) out.append(i % 2 ? el("code", { textContent: part }) : part);
  });
  return out;
}

function resolve(ref) {
  return ref.split("/").slice(1).reduce((node, key) => node[key], SPEC);
}

function exampleBody(operation) {
  const content = operation.requestBody && operation.requestBody.content["application/json"];
  if (!content) return null;
  const schema = content.schema.$ref ? resolve(content.schema.$ref) : content.schema;
  return schema.example !== undefined ? schema.example : {};
}

function operationView(path, method, operation, index) {
  const fields = [];
  const params = el("div", { className: "params" });
  for (const p of operation.parameters || []) {
    const id = `op${index}-${p.in}-${p.name}`;
    const input = el("input", { id, name: p.name });
    input.value = p.example !== undefined ? String(p.example) : "";
    input.placeholder = p.schema && p.schema.default !== undefined ? `default: ${p.schema.default}` : "";
    fields.push({ param: p, input });
    params.append(el("label", { htmlFor: id }, `${p.name}${p.required ? " *" : ""} (${p.in})`), input);
    if (p.description) params.append(el("p", { className: "desc" }, prose(p.description)));
  }
  const example = exampleBody(operation);
  const body = example === null ? null : el("textarea", { value: JSON.stringify(example, null, 2) });
  if (body) body.setAttribute("aria-label", `JSON body of ${method.toUpperCase()} ${path}`);
  const answer = el("pre", { className: "answer", hidden: true });
  answer.setAttribute("aria-live", "polite");
  const send = el("button", { type: "button", textContent: "Send" });
  send.addEventListener("click", () => call(path, method, fields, body, answer, send));
  const codes = el("p", { className: "codes" });
  Object.entries(operation.responses).forEach(([code, r], i) => {
    codes.append(i ? ` · ${code} ` : `${code} `, prose(r.description));
  });
  const details = el("details", { className: "op" },
    el("summary", {},
      el("span", { className: `method ${method}`, textContent: method.toUpperCase() }),
      el("span", { className: "path", textContent: path }),
      el("span", { className: "muted" }, prose(operation.summary))),
    el("div", { className: "body" }, params,
      ...(body ? [el("p", {}, "Body (JSON):"), body] : []),
      codes,
      ...(operation.security ? [el("p", { className: "codes" },
        "Host only when the server has an ADMIN_TOKEN: add an Authorization header.")] : []),
      send, answer));
  return details;
}

async function call(path, method, fields, body, answer, send) {
  let url = path;
  const query = new URLSearchParams();
  const headers = {};
  for (const { param, input } of fields) {
    const value = input.value;
    if (param.in === "path") url = url.replace(`{${param.name}}`, encodeURIComponent(value));
    else if (value === "") continue;
    else if (param.in === "query") query.set(param.name, value);
    else if (param.in === "header") headers[param.name] = value;
  }
  if (query.toString()) url += `?${query}`;
  const options = { method: method.toUpperCase(), headers };
  if (body) {
    options.body = body.value;
    headers["Content-Type"] = "application/json";
  }
  answer.hidden = false;
  answer.textContent = `${options.method} ${url} …`;
  const controller = new AbortController();
  options.signal = controller.signal;
  try {
    const response = await fetch(url, options);
    const head = `${response.status} ${response.statusText}  (node ${response.headers.get("X-Node-Id") || "?"})\n\n`;
    if ((response.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
      await stream(response, head, answer, send, controller);
      return;
    }
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (err) { /* not JSON */ }
    answer.textContent = head + shown;
  } catch (err) {
    if (err.name !== "AbortError") answer.textContent = `The request failed: ${err.message}`;
  }
}

async function stream(response, head, answer, send, controller) {
  // Show the live stream for up to 30 s, or until Stop.
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  answer.textContent = head;
  const stop = el("button", { type: "button", textContent: "Stop" });
  send.after(stop);
  const done = () => { controller.abort(); stop.remove(); };
  stop.addEventListener("click", done);
  const timer = setTimeout(done, 30000);
  try {
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) break;
      answer.textContent += decoder.decode(value, { stream: true });
    }
  } catch (err) { /* stopped */ }
  clearTimeout(timer);
  stop.remove();
}

async function start() {
  try {
    SPEC = await (await fetch("/openapi.json")).json();
  } catch (err) {
    $("error-text").textContent = `Could not load /openapi.json: ${err.message}`;
    $("error").hidden = false;
    return;
  }
  $("api-title").textContent = `${SPEC.info.title} API ${SPEC.info.version}`;
  $("api-description").replaceChildren(prose(SPEC.info.description));
  const groups = new Map();
  let index = 0;
  for (const [path, methods] of Object.entries(SPEC.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const tag = (operation.tags || ["other"])[0];
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(operationView(path, method, operation, index++));
    }
  }
  const root = $("operations");
  for (const [tag, views] of groups) root.append(el("h2", { className: "tag" }, tag), ...views);
}

start();
