"use strict";
// The chat page of `reattach serve`.
//
// An answer is a job on the server. Its events arrive through an EventSource;
// each carries its seq as the SSE id. After every event the page stores the
// answer so far together with that seq, in one sessionStorage entry, so a reload
// can show exactly that text and ask for the events after that seq: nothing is
// missed and nothing is shown twice. While the page stays open, the EventSource
// reconnects on its own and sends Last-Event-ID, which the server prefers.

const CONVERSATION_KEY = "reattach.conversation";
const CURRENT_KEY = "reattach.current";
const TOKEN_KEY = "reattach.token";
const TOKEN_COOKIE = "reattach_token";
const RUNNING_REFRESH_MS = 3000;

const el = (id) => document.getElementById(id);
const ui = {
  transcript: el("transcript"),
  composer: el("composer"),
  prompt: el("prompt"),
  model: el("model"),
  send: el("send"),
  stop: el("stop"),
  notice: el("notice"),
  running: el("running"),
  runningEmpty: el("running-empty"),
  tokenForm: el("token-form"),
  token: el("token"),
  newChat: el("new-chat"),
};

// The conversation: finished turns ({role, content, status?, error?}).
let conversation = load(CONVERSATION_KEY) || newConversation();
// The answer being streamed: {streamId, seq, parts, tools, status, error}.
let current = load(CURRENT_KEY);
let source = null;
let bubble = null;

// -- storage ---------------------------------------------------------------------

function load(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key));
  } catch {
    return null;
  }
}

function save(key, value) {
  if (value === null) sessionStorage.removeItem(key);
  else sessionStorage.setItem(key, JSON.stringify(value));
}

function newConversation() {
  return { id: randomId("c"), turns: [] };
}

function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + "-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// -- the API -----------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body && body.error) || {};
    if (response.status === 401) ui.tokenForm.hidden = false;
    throw new ApiFailure(response.status, error.code || "http_error", error.message || response.statusText);
  }
  return body;
}

// -- rendering ---------------------------------------------------------------------

function addBubble(role, status) {
  const item = document.createElement("li");
  item.className = "message " + role;
  if (status) item.dataset.status = status;
  ui.transcript.append(item);
  return item;
}

function renderUser(item, text) {
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  item.replaceChildren(body);
}

function renderAnswer(item, parts, status, error) {
  const nodes = [];
  for (const part of parts) {
    if (part.type === "think") {
      const details = document.createElement("details");
      details.className = "think";
      const summary = document.createElement("summary");
      summary.textContent = "Reasoning";
      const text = document.createElement("div");
      text.textContent = part.think;
      details.append(summary, text);
      nodes.push(details);
    } else if (part.type === "tool_call") {
      const call = document.createElement("pre");
      call.className = "tool";
      call.textContent = `${part.tool_call.name || "tool"}(${part.tool_call.args})`;
      nodes.push(call);
    } else if (part.type === "text") {
      const text = document.createElement("div");
      text.className = "text";
      text.textContent = part.text;
      nodes.push(text);
    }
  }
  if (status !== "streaming" && status !== "complete") {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = status === "aborted" ? "Stopped." : "Failed: " + (error || "unknown error");
    nodes.push(note);
  }
  item.replaceChildren(...nodes);
  item.dataset.status = status;
  item.scrollIntoView({ block: "end" });
}

function renderConversation() {
  ui.transcript.replaceChildren();
  for (const turn of conversation.turns) {
    const item = addBubble(turn.role, turn.role === "assistant" ? turn.status : null);
    if (turn.role === "user") renderUser(item, turn.content);
    else renderAnswer(item, turn.parts || [], turn.status, turn.error);
  }
}

function answerText(parts) {
  return parts.filter((p) => p.type === "text").map((p) => p.text).join("");
}

function setBusy(busy) {
  ui.send.disabled = busy;
  ui.stop.disabled = !busy;
  ui.newChat.disabled = busy;
}

function setNotice(text) {
  ui.notice.textContent = text;
}

// -- events ------------------------------------------------------------------------

function apply(answer, event) {
  const data = event.data || {};
  switch (event.event) {
    case "message_delta":
      addText(answer, "text", data.text);
      break;
    case "reasoning_delta":
      addText(answer, "think", data.text);
      break;
    case "tool_call_delta":
      addToolDelta(answer, data);
      break;
    case "usage":
      answer.usage = data;
      break;
    case "snapshot":
      // The log was trimmed: the snapshot stands for every event up to its seq.
      answer.parts = data.parts || [];
      answer.tools = Object.fromEntries(data.tool_calls || []);
      answer.usage = data.usage || null;
      break;
    case "final":
      answer.status = data.status;
      answer.error = data.error || null;
      break;
  }
}

function addText(answer, type, text) {
  if (typeof text !== "string" || text === "") return;
  const last = answer.parts[answer.parts.length - 1];
  if (last && last.type === type) last[type] += text;
  else answer.parts.push({ type, [type]: text });
}

function addToolDelta(answer, data) {
  let position = answer.tools[data.index];
  if (position === undefined) {
    position = answer.parts.length;
    answer.parts.push({ type: "tool_call", tool_call: { id: "", name: "", args: "" } });
    answer.tools[data.index] = position;
  }
  const call = answer.parts[position].tool_call;
  if (data.id) call.id = data.id;
  if (data.name) call.name = data.name;
  if (data.arguments) call.args += data.arguments;
}

function follow() {
  closeSource();
  const url = `/v1/jobs/${encodeURIComponent(current.streamId)}/events?after=${current.seq}`;
  source = new EventSource(url);
  source.onopen = () => setNotice("");
  source.onmessage = onChunk;
  source.onerror = () => {
    if (source && source.readyState === EventSource.CLOSED) explainClosed();
    else setNotice("Connection lost; reconnecting…");
  };
  setBusy(true);
}

function onChunk(message) {
  const seq = Number(message.lastEventId);
  // A chunk at or below the stored seq is already on the screen.
  if (!current || !Number.isSafeInteger(seq) || seq <= current.seq) return;
  const event = JSON.parse(message.data);
  apply(current, event);
  current.seq = seq;
  if (event.event === "final") {
    finish();
    return;
  }
  save(CURRENT_KEY, current);
  renderAnswer(bubble, current.parts, "streaming");
}

function finish() {
  closeSource();
  const turn = {
    role: "assistant",
    content: answerText(current.parts),
    parts: current.parts,
    status: current.status,
    error: current.error,
    streamId: current.streamId,
  };
  conversation.turns.push(turn);
  save(CONVERSATION_KEY, conversation);
  renderAnswer(bubble, turn.parts, turn.status, turn.error);
  current = null;
  bubble = null;
  save(CURRENT_KEY, null);
  setBusy(false);
  setNotice("");
  refreshRunning();
}

async function explainClosed() {
  // The server refused the stream (the job is gone, or the cursor is wrong).
  closeSource();
  if (!current) return;
  try {
    await api(`/v1/jobs/${encodeURIComponent(current.streamId)}`);
    if (current.restarted) throw new ApiFailure(0, "stream_refused", "the server refused the event stream");
    // The job exists but refused the stored seq: read its log again from the start.
    current = { ...current, seq: 0, parts: [], tools: {}, restarted: true };
    save(CURRENT_KEY, current);
    renderAnswer(bubble, current.parts, "streaming");
    follow();
  } catch (failure) {
    if (failure.status === 401) {
      setNotice("Enter the token to go on.");
      return;
    }
    current.status = "error";
    current.error = failure.status === 404 ? "this answer is no longer available" : failure.message;
    finish();
  }
}

function closeSource() {
  if (source) source.close();
  source = null;
}

// -- actions -----------------------------------------------------------------------

async function send(text) {
  const messages = conversation.turns
    .filter((t) => t.content && !(t.role === "assistant" && t.status === "error"))
    .map((t) => ({ role: t.role, content: t.content }));
  messages.push({ role: "user", content: text });
  setBusy(true);
  let created;
  try {
    created = await api("/v1/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: ui.model.value || undefined,
        messages,
        conversation_id: conversation.id,
        client_request_id: randomId("r"),
      }),
    });
  } catch (failure) {
    setBusy(false);
    setNotice(failure.message);
    return;
  }
  conversation.turns.push({ role: "user", content: text });
  save(CONVERSATION_KEY, conversation);
  renderUser(addBubble("user"), text);
  ui.prompt.value = "";
  current = { streamId: created.stream_id, seq: 0, parts: [], tools: {}, status: "streaming" };
  save(CURRENT_KEY, current);
  bubble = addBubble("assistant", "streaming");
  bubble.dataset.streamId = current.streamId;
  follow();
  refreshRunning();
}

async function abort(streamId) {
  try {
    await api(`/v1/jobs/${encodeURIComponent(streamId)}/abort`, { method: "POST" });
  } catch (failure) {
    setNotice(failure.message);
  }
  refreshRunning();
}

async function refreshRunning() {
  let answer;
  try {
    answer = await api("/v1/jobs?status=running");
  } catch {
    return;
  }
  const items = answer.jobs.map((job) => {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.className = "job";
    label.textContent = `${job.model || "?"} · ${job.stream_id.slice(0, 8)} · ${job.last_seq} events`;
    label.title = job.stream_id;
    const stop = document.createElement("button");
    stop.type = "button";
    stop.className = "danger small";
    stop.textContent = "Stop";
    stop.addEventListener("click", () => abort(job.stream_id));
    item.append(label, stop);
    return item;
  });
  ui.running.replaceChildren(...items);
  ui.runningEmpty.hidden = items.length > 0;
}

async function loadModels() {
  try {
    const answer = await api("/v1/models");
    const options = answer.data.map((model) => new Option(model.id, model.id));
    ui.model.replaceChildren(...options);
  } catch {
    // Without the list, the server's default model answers.
  }
}

function saveToken(event) {
  event.preventDefault();
  const token = ui.token.value.trim();
  localStorage.setItem(TOKEN_KEY, token);
  // An EventSource cannot send headers: it sends this cookie instead.
  document.cookie = `${TOKEN_COOKIE}=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
  ui.tokenForm.hidden = true;
  start();
}

// -- start -------------------------------------------------------------------------

function start() {
  renderConversation();
  if (current && current.streamId) {
    bubble = addBubble("assistant", "streaming");
    bubble.dataset.streamId = current.streamId;
    renderAnswer(bubble, current.parts, "streaming");
    follow();
  } else {
    setBusy(false);
  }
  loadModels();
  refreshRunning();
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.prompt.value;
  if (text.trim() && !current) send(text);
});
ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});
ui.stop.addEventListener("click", () => {
  if (current) abort(current.streamId);
});
ui.newChat.addEventListener("click", () => {
  if (current) return;
  conversation = newConversation();
  save(CONVERSATION_KEY, conversation);
  renderConversation();
});
ui.tokenForm.addEventListener("submit", saveToken);
setInterval(() => {
  if (document.visibilityState === "visible") refreshRunning();
}, RUNNING_REFRESH_MS);

start();
