// The chat page: plain browser JavaScript, no build step, no network beyond this server.
"use strict";

const TEXT = {
  en: {
    title: "News Q&A",
    generator: "Generator",
    newChat: "New chat",
    documents: "Documents",
    apiKey: "API key",
    apiKeyLabel: "API key (kept in this browser)",
    save: "Save",
    close: "Close",
    emptyHint: "Ask a question about the indexed articles.",
    placeholder: "Ask a question (Enter sends, Shift+Enter for a new line)",
    send: "Send",
    stop: "Stop",
    upload: "Upload",
    notFound: "Not found in the documents",
    notFoundText: "The documents do not contain the answer.",
    stopped: "Stopped.",
    reading: "Reading the documents…",
    preview: "From the source, while the answer is written:",
    writing: "Writing the answer…",
    sources: "Sources",
    serverDown: "Cannot reach the server. Is it running?",
    notReady: "The server is up but not ready: {0}",
    needKey: "This server needs an API key: enter it under “API key”.",
    chooseFile: "Choose a file first.",
    uploading: "Uploading… {0}%",
    indexing: "Indexing…",
    indexingStage: "Indexing {0}: {1}…",
    indexingCount: "Indexing {0}: {1} {2}/{3}",
    uploaded: "Added {0}: {1} passages.",
    deleted: "Deleted {0}.",
    confirmDelete: "Delete {0} from the index?",
    confirmReplace: "{0} is already in the documents. Replace it?",
    delete: "Delete",
    noDocuments: "No documents yet.",
    docMeta: "{0} articles · {1} passages · {2} characters",
    docPages: " · {0} scanned pages",
    articles: "Articles",
    timing: "{0} ms",
    searched: "Searched for: {0}",
    evidence: "Highlighted: the sentence that supports the answer.",
    scanPage: "Page {0} of the scan: the evidence is highlighted.",
    wholePage: "Whole page",
    zoomIn: "Zoom in",
    scanMissing: "The page image cannot be shown: {0}",
  },
  zh: {
    title: "新闻问答",
    generator: "生成方式",
    newChat: "新对话",
    documents: "文档",
    apiKey: "API 密钥",
    apiKeyLabel: "API 密钥（保存在本浏览器）",
    save: "保存",
    close: "关闭",
    emptyHint: "就已收录的文章提问。",
    placeholder: "输入问题（回车发送，Shift+回车换行）",
    send: "发送",
    stop: "停止",
    upload: "上传",
    notFound: "文档中未找到答案",
    notFoundText: "文档中没有找到这个问题的答案。",
    stopped: "已停止。",
    reading: "正在查阅文档…",
    preview: "原文摘录（答案生成中）：",
    writing: "正在撰写答案…",
    sources: "来源",
    serverDown: "无法连接服务器，请确认服务已启动。",
    notReady: "服务器已启动但尚未就绪：{0}",
    needKey: "此服务器需要 API 密钥：请在“API 密钥”中填写。",
    chooseFile: "请先选择文件。",
    uploading: "上传中… {0}%",
    indexing: "正在建立索引…",
    indexingStage: "正在为 {0} 建立索引：{1}…",
    indexingCount: "正在为 {0} 建立索引：{1} {2}/{3}",
    "stage:starting": "开始",
    "stage:removing": "删除",
    "stage:embedding chunks": "嵌入段落",
    "stage:adding new words to the lexicon": "更新词表",
    "stage:indexing vectors and keywords": "建立向量和关键词索引",
    "stage:writing the index": "写入索引",
    "stage:loading the new index": "加载新索引",
    "stage:reading scanned pages (OCR)": "识别扫描页（OCR）",
    docPages: " · 扫描件 {0} 页",
    uploaded: "已添加 {0}：{1} 个段落。",
    deleted: "已删除 {0}。",
    confirmDelete: "从索引中删除 {0}？",
    confirmReplace: "文档中已有 {0}，替换它吗？",
    delete: "删除",
    noDocuments: "还没有文档。",
    docMeta: "{0} 篇文章 · {1} 个段落 · {2} 字",
    articles: "文章标题",
    timing: "{0} 毫秒",
    searched: "检索的问题：{0}",
    evidence: "高亮部分：支持答案的句子。",
    scanPage: "扫描件第 {0} 页：高亮处为证据。",
    wholePage: "整页",
    zoomIn: "放大",
    scanMissing: "无法显示页面图像：{0}",
  },
};

const LANG = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
const UI = LANG.toLowerCase().startsWith("zh") ? "zh" : "en";
const HISTORY_TURNS = 20;
const KEY_STORE = "rag-news.api-key";
const GENERATOR_STORE = "rag-news.generator";

function t(key, ...args) {
  const template = TEXT[UI][key] ?? TEXT.en[key] ?? key;
  return template.replace(/\{(\d+)\}/g, (_, n) => String(args[Number(n)] ?? ""));
}

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- requests

const session = {
  history: [], // earlier turns sent with each question: [{role, content}]
  controller: null, // AbortController of the answer being streamed
  apiKey: localStorage.getItem(KEY_STORE) || "",
};

class RequestFailed extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  return session.apiKey ? { ...extra, Authorization: `Bearer ${session.apiKey}` } : { ...extra };
}

/** The message of an error response: the server's JSON body says what went wrong. */
async function failure(response) {
  if (response.status === 401) {
    showKeyForm(true);
    return new RequestFailed(t("needKey"), 401);
  }
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    message = body.message || (body.error && body.error.message) || body.detail || message;
  } catch (_) {
    // not JSON: keep the status line
  }
  return new RequestFailed(message, response.status);
}

async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers) });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new RequestFailed(t("serverDown"), 0);
  }
  if (!response.ok) throw await failure(response);
  return response;
}

/** Server-Sent Events from a fetch response: yields {event, data} as each one completes. */
async function* serverEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      let event = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
    if (done) return;
  }
}

// ---------------------------------------------------------------- banner, key, health

function showBanner(message) {
  const banner = $("banner");
  banner.textContent = message || "";
  banner.hidden = !message;
}

function showKeyForm(open) {
  $("key-form").hidden = !open;
  $("toggle-key").setAttribute("aria-expanded", String(open));
  if (open) $("api-key").focus();
}

async function loadHealth() {
  let body;
  try {
    // With keys set, health lists the generators only to a caller with a key.
    const response = await fetch("/api/health", { headers: headers() });
    body = await response.json();
  } catch (_) {
    showBanner(t("serverDown"));
    return;
  }
  showBanner(body.ready ? "" : t("notReady", body.detail || body.status));
  const select = $("generator");
  const generators = body.generators || [];
  const wanted = localStorage.getItem(GENERATOR_STORE) || body.generator;
  select.replaceChildren(
    ...generators.map((name) => {
      const option = element("option", "", name);
      option.value = name;
      return option;
    }),
  );
  if (generators.length) select.value = generators.includes(wanted) ? wanted : body.generator;
}

// ---------------------------------------------------------------- conversation

function addMessage(role, text) {
  $("empty").hidden = true;
  const item = element("li", `msg ${role}`);
  const body = element("span", "text", text);
  item.append(body);
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function showError(item, message) {
  item.className = "msg assistant error";
  item.replaceChildren(element("span", "text", message));
}

/** The answer text with clickable [n] markers; answers without markers get one per citation. */
function answerNodes(answer) {
  const citations = answer.citations;
  let text = answer.answer;
  if (citations.length && !/\[\d+\]/.test(text)) {
    text += " " + citations.map((_, i) => `[${i + 1}]`).join("");
  }
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    const n = Number(match[1]);
    if (n < 1 || n > citations.length) continue;
    nodes.push(document.createTextNode(text.slice(last, match.index)));
    const button = element("button", "cite", `[${n}]`);
    button.type = "button";
    button.title = citations[n - 1].title;
    button.addEventListener("click", () => openSource(citations[n - 1], n));
    nodes.push(button);
    last = match.index + match[0].length;
  }
  nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

/** The evidence quoted from the source while an LLM writes the answer: the sentence, its citation. */
function previewNodes(evidence) {
  const box = element("blockquote", "preview");
  box.append(element("span", "note", t("preview")));
  const quote = element("span", "quote", evidence.evidence || evidence.answer);
  box.append(quote);
  evidence.citations.forEach((citation, i) => {
    const button = element("button", "cite", `[${i + 1}] ${citation.title}`);
    button.type = "button";
    button.addEventListener("click", () => openSource(citation, i + 1));
    box.append(button);
  });
  return box;
}

function renderAnswer(item, answer, question) {
  item.classList.remove("streaming");
  const parts = [];
  if (answer.abstained) {
    // The server's text may be an LLM answer it withheld as ungrounded: show why, not it.
    item.classList.add("abstained");
    parts.push(element("span", "status", t("notFound")));
    parts.push(element("span", "text", t("notFoundText")));
    if (answer.abstain_reason) parts.push(element("span", "note", answer.abstain_reason));
  } else {
    const text = element("span", "text");
    text.append(...answerNodes(answer));
    parts.push(text);
    const sources = element("ol", "sources");
    sources.setAttribute("aria-label", t("sources"));
    answer.citations.forEach((citation, i) => {
      const dated = citation.published ? ` · ${citation.published}` : "";
      const button = element("button", "", `[${i + 1}] ${citation.title}${dated}`);
      button.type = "button";
      button.addEventListener("click", () => openSource(citation, i + 1));
      const li = element("li");
      li.append(button);
      sources.append(li);
    });
    if (answer.citations.length) parts.push(sources);
  }
  const searched = answer.standalone_question;
  if (searched && searched !== question) parts.push(element("span", "note searched", t("searched", searched)));
  for (const warning of answer.warnings || []) parts.push(element("span", "note", warning));
  const total = answer.timings_ms && answer.timings_ms.total_ms;
  if (total) parts.push(element("span", "note", t("timing", Math.round(total))));
  item.replaceChildren(...parts);
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("send").hidden = busy;
  $("stop").hidden = !busy;
}

async function ask(question) {
  addMessage("user", question);
  const item = addMessage("assistant streaming", "");
  const text = item.querySelector(".text");
  // Until the first words arrive (seconds with a local LLM), say what is happening.
  const waiting = element("span", "status", t("reading"));
  item.prepend(waiting);
  const controller = new AbortController();
  session.controller = controller;
  setBusy(true);
  const payload = { question, history: session.history.slice(-2 * HISTORY_TURNS) };
  if ($("generator").value) payload.generator = $("generator").value;
  try {
    const response = await request("/api/ask/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(payload),
      signal: controller.signal,
    });
    let finished = false;
    let preview = null;
    for await (const { event, data } of serverEvents(response)) {
      if (event === "preview") {
        // Verified evidence from the documents, quoted until the answer itself arrives.
        preview = previewNodes(data);
        item.insertBefore(preview, text);
        waiting.textContent = t("writing");
        item.scrollIntoView({ block: "end" });
      } else if (event === "token") {
        waiting.remove();
        if (preview) {
          preview.remove();
          preview = null;
        }
        text.textContent += data.text;
        item.scrollIntoView({ block: "end" });
      } else if (event === "done") {
        renderAnswer(item, data, question);
        const said = data.abstained ? t("notFoundText") : data.answer;
        session.history.push({ role: "user", content: question }, { role: "assistant", content: said });
        finished = true;
      } else if (event === "error") {
        showError(item, data.message);
        finished = true;
      }
    }
    if (!finished) showError(item, t("serverDown"));
  } catch (error) {
    if (error.name === "AbortError") {
      waiting.remove();
      item.classList.remove("streaming");
      item.append(element("span", "note", t("stopped")));
    } else {
      showError(item, error.message);
    }
  } finally {
    if (session.controller === controller) session.controller = null;
    setBusy(false);
  }
}

function newChat() {
  if (session.controller) session.controller.abort();
  session.history = [];
  $("messages").replaceChildren();
  $("empty").hidden = false;
  closePanel("source");
  $("question").focus();
}

// ---------------------------------------------------------------- panels

function closePanel(id) {
  $(id).hidden = true;
  if (id === "docs") $("toggle-docs").setAttribute("aria-expanded", "false");
}

/** The cited passage, its evidence highlighted at the answer's character offsets. */
function openSource(citation, n) {
  closePanel("docs");
  $("source-title").textContent = `[${n}] ${citation.title}${citation.published ? ` (${citation.published})` : ""}`;
  $("source-meta").textContent = `${citation.doc_id} · ${t("evidence")}`;
  const passage = citation.text;
  const from = Math.max(0, Math.min(passage.length, citation.evidence_start - citation.start));
  const to = Math.max(from, Math.min(passage.length, citation.evidence_end - citation.start));
  const mark = element("mark", "", passage.slice(from, to));
  $("source-text").replaceChildren(
    document.createTextNode(passage.slice(0, from)),
    mark,
    document.createTextNode(passage.slice(to)),
  );
  $("source").hidden = false;
  mark.scrollIntoView({ block: "nearest" });
  showScan(citation);
}

/** A document's address under /api/documents (its id keeps its slashes, each part escaped). */
function documentPath(docId) {
  return `/api/documents/${docId.split("/").map(encodeURIComponent).join("/")}`;
}

let scanShown = { token: 0, url: "" };

/** A scanned source's page, fetched with the API key, with the passage's printed lines
 * shaded and the evidence's lines highlighted (boxes are fractions of the page). */
async function showScan(citation) {
  const figure = $("source-scan");
  const token = ++scanShown.token;
  const regions = citation.regions || [];
  if (scanShown.url) URL.revokeObjectURL(scanShown.url);
  scanShown.url = "";
  figure.hidden = true;
  if (!regions.length || !citation.page) return;
  const page = citation.page;
  const path = `${documentPath(citation.doc_id)}/pages/${page}`;
  let blob;
  try {
    blob = await (await request(path)).blob();
  } catch (error) {
    if (token !== scanShown.token) return;
    $("source-page-meta").textContent = t("scanMissing", error.message);
    $("source-sheet").replaceChildren();
    figure.hidden = false;
    return;
  }
  if (token !== scanShown.token) return;
  scanShown.url = URL.createObjectURL(blob);
  const image = element("img");
  image.id = "source-page";
  image.alt = t("scanPage", page);
  image.src = scanShown.url;
  const boxes = regions
    .filter((region) => region.page === page)
    .map((region) => {
      const hit = region.start < citation.evidence_end && region.end > citation.evidence_start;
      const box = element("div", `box ${hit ? "hit" : "passage"}`);
      const [x0, y0, x1, y1] = region.box;
      Object.assign(box.style, {
        left: `${x0 * 100}%`, top: `${y0 * 100}%`, width: `${(x1 - x0) * 100}%`, height: `${(y1 - y0) * 100}%`,
      });
      return box;
    });
  $("source-sheet").replaceChildren(image, ...boxes);
  $("source-page-meta").textContent = t("scanPage", page);
  figure.hidden = false;
  setZoom(true);
  image.addEventListener("load", centreEvidence, { once: true });
}

/** Zoomed in (the page at three times the panel's width) or the whole page. */
function setZoom(zoomed) {
  $("source-view").classList.toggle("zoomed", zoomed);
  $("source-zoom").textContent = t(zoomed ? "wholePage" : "zoomIn");
  centreEvidence();
}

/** Scroll the page view (only it, not the panel) so that the evidence's first line is in the middle.
 * Done at once (reading the offsets lays the page out), so the view is never shown unscrolled. */
function centreEvidence() {
  const view = $("source-view");
  const hit = view.querySelector(".box.hit");
  if (!hit) return;
  view.scrollLeft = Math.max(0, hit.offsetLeft - view.clientWidth * 0.1);
  view.scrollTop = Math.max(0, hit.offsetTop + hit.offsetHeight / 2 - view.clientHeight / 2);
}

async function loadDocuments() {
  const list = $("doc-list");
  let body;
  try {
    body = await (await request("/api/documents")).json();
  } catch (error) {
    list.replaceChildren(element("li", "meta", error.message));
    return;
  }
  if (!body.documents.length) {
    list.replaceChildren(element("li", "meta", t("noDocuments")));
    return;
  }
  list.replaceChildren(
    ...body.documents.map((doc) => {
      const item = element("li");
      const info = element("div", "doc");
      info.append(element("strong", "", doc.source), element("span", "meta", t("docMeta", doc.titles.length, doc.chunks, doc.characters) + (doc.pages ? t("docPages", doc.pages) : "")));
      if (doc.titles.length) {
        const titles = element("details", "titles");
        titles.append(element("summary", "", t("articles")), ...doc.titles.map((title) => element("div", "meta", title)));
        info.append(titles);
      }
      const remove = element("button", "", t("delete"));
      remove.type = "button";
      remove.setAttribute("aria-label", `${t("delete")} ${doc.source}`);
      remove.addEventListener("click", () => deleteDocument(doc));
      item.append(info, remove);
      return item;
    }),
  );
}

async function deleteDocument(doc) {
  if (!window.confirm(t("confirmDelete", doc.source))) return;
  const status = $("upload-status");
  try {
    await request(documentPath(doc.doc_id), { method: "DELETE" });
    await loadDocuments();
    loadHealth();
    status.textContent = t("deleted", doc.source);
  } catch (error) {
    await loadDocuments();
    status.textContent = error.message;
  }
}

/** The running index update (GET /api/index/status) as [status line, bar percent], or null. */
async function indexingText() {
  let state;
  try {
    state = await (await request("/api/index/status")).json();
  } catch (_) {
    return null; // the upload's own answer will say what went wrong
  }
  if (!state.busy || !state.stage) return null;
  const stage = t(`stage:${state.stage}`).replace(/^stage:/, "");
  if (state.total > 0) {
    return [t("indexingCount", state.document, stage, state.done, state.total), Math.round((100 * state.done) / state.total)];
  }
  return [t("indexingStage", state.document, stage), 100];
}

/** Upload with XMLHttpRequest: fetch cannot report upload progress. */
function upload(file, replace = false) {
  const status = $("upload-status");
  const progress = $("upload-progress");
  const form = new FormData();
  form.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", replace ? "/api/documents?replace=true" : "/api/documents");
  if (session.apiKey) xhr.setRequestHeader("Authorization", `Bearer ${session.apiKey}`);
  progress.hidden = false;
  progress.value = 0;
  xhr.upload.onprogress = (event) => {
    if (!event.lengthComputable) return;
    progress.value = Math.round((100 * event.loaded) / event.total);
    status.textContent = t("uploading", progress.value);
  };
  let polling = null;
  let finished = false;
  xhr.upload.onload = () => {
    progress.value = 100;
    status.textContent = t("indexing");
    // The file is sent; the server now embeds it. Show how far that is until it answers.
    polling = window.setInterval(async () => {
      const shown = await indexingText();
      if (shown && !finished) [status.textContent, progress.value] = shown;
    }, 700);
  };
  const stopPolling = () => {
    finished = true; // a poll still in flight must not overwrite the upload's answer
    if (polling !== null) window.clearInterval(polling);
    polling = null;
  };
  return new Promise((resolve) => {
    xhr.onload = async () => {
      stopPolling();
      progress.hidden = true;
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch (_) {
        // keep the status line
      }
      if (xhr.status === 201) {
        $("upload-file").value = "";
        await loadDocuments();
        loadHealth(); // the first upload makes an index: the server is ready now
        status.textContent = t("uploaded", body.source, body.chunks);
      } else if (xhr.status === 409 && !replace) {
        // The name exists: replacing it is the user's choice, not a silent overwrite.
        if (window.confirm(t("confirmReplace", file.name))) await upload(file, true);
        else status.textContent = body.message || "";
      } else if (xhr.status === 401) {
        showKeyForm(true);
        status.textContent = t("needKey");
      } else {
        status.textContent = body.message || `${xhr.status} ${xhr.statusText}`;
      }
      resolve();
    };
    xhr.onerror = () => {
      stopPolling();
      progress.hidden = true;
      status.textContent = t("serverDown");
      resolve();
    };
    xhr.send(form);
  });
}

// ---------------------------------------------------------------- wiring

function translatePage() {
  document.documentElement.lang = UI === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
}

function wire() {
  const question = $("question");
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text || session.controller) return;
    question.value = "";
    ask(text);
  });
  question.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME candidate is neither.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => session.controller && session.controller.abort());
  $("new-chat").addEventListener("click", newChat);
  $("generator").addEventListener("change", (event) => localStorage.setItem(GENERATOR_STORE, event.target.value));
  $("close-source").addEventListener("click", () => closePanel("source"));
  $("source-zoom").addEventListener("click", () => setZoom(!$("source-view").classList.contains("zoomed")));
  $("close-docs").addEventListener("click", () => closePanel("docs"));
  $("toggle-docs").addEventListener("click", () => {
    const open = $("docs").hidden;
    if (open) {
      closePanel("source");
      loadDocuments();
    }
    $("docs").hidden = !open;
    $("toggle-docs").setAttribute("aria-expanded", String(open));
  });
  $("toggle-key").addEventListener("click", () => showKeyForm($("key-form").hidden));
  $("api-key").value = session.apiKey;
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    session.apiKey = $("api-key").value.trim();
    if (session.apiKey) localStorage.setItem(KEY_STORE, session.apiKey);
    else localStorage.removeItem(KEY_STORE);
    showKeyForm(false);
    showBanner("");
    loadHealth();
    if (!$("docs").hidden) loadDocuments();
  });
  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("upload-file").files[0];
    if (!file) {
      $("upload-status").textContent = t("chooseFile");
      return;
    }
    upload(file);
  });
}

translatePage();
wire();
loadHealth();
