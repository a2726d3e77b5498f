"use strict";
// The worklist: the calls come as JSON in the page (worst first) and are rendered a page at a
// time, so a night of 10,000 calls opens as fast as a few. Filters, search, sort and page live in
// the URL's fragment: Back from a call page returns to the same list.
const data = JSON.parse(document.getElementById("report-data").textContent);
const calls = data.calls;
const PAGE_SIZE = 50;
const STORE = "audit-review:";  // localStorage: one decision per finding key (see call.js)
const table = document.getElementById("calls");
const body = table.tBodies[0];
const controls = {};
for (const name of ["verdict", "rule", "agent", "reviewed", "q"]) {
  controls[name] = document.getElementById("filter-" + name);
}
const numeric = new Set(["score"]);
let state = {};

function localDecisions() {
  const keys = new Set();
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key.startsWith(STORE)) keys.add(key.slice(STORE.length));
  }
  return keys;
}

let decided = localDecisions();
window.addEventListener("storage", () => { decided = localDecisions(); show(); });
window.addEventListener("pageshow", () => { decided = localDecisions(); readState(); show(); });

function reviewed(call) {
  let count = 0;
  for (const key of call.findings) {
    if (decided.has(key) || call.stored.includes(key)) count += 1;
  }
  return count;
}

function haystack(call) {
  if (call.haystack === undefined) {
    call.haystack = (call.id + " " + call.agent + " " + call.text).toLowerCase();
  }
  return call.haystack;
}

function keep(call) {
  if (state.verdict && call.verdict !== state.verdict) return false;
  if (state.agent && call.agent !== state.agent) return false;
  if (state.rule && !call.rules.includes(state.rule)) return false;
  if (state.reviewed) {
    const done = call.findings.length > 0 && reviewed(call) === call.findings.length;
    if ((state.reviewed === "reviewed") !== done || call.findings.length === 0) return false;
  }
  return !state.q || haystack(call).includes(state.q.toLowerCase());
}

function readState() {
  const params = new URLSearchParams(location.hash.slice(1));
  state = {};
  for (const name of Object.keys(controls)) {
    state[name] = params.get(name) || "";
    controls[name].value = state[name];
    if (controls[name].value !== state[name]) state[name] = "";  // a value the list does not offer
  }
  state.sort = params.get("sort") || "";
  state.desc = params.get("desc") === "1";
  state.page = Math.max(1, Number(params.get("page")) || 1);
}

function writeState() {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state)) {
    if (value && !(name === "page" && value === 1)) params.set(name, value === true ? "1" : value);
  }
  history.replaceState(null, "", "#" + params.toString());
}

// each cell names its column: on a narrow screen the rows are cards and the header row is hidden
const columns = Array.from(table.tHead.rows[0].cells, (th) => th.textContent.trim());

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  td.dataset.label = columns[td.cellIndex];
  if (className) td.className = className;
  return td;
}

function render(call) {
  const row = body.insertRow();
  row.dataset.call = call.id;
  row.dataset.verdict = call.verdict;
  row.dataset.agent = call.agent;
  row.dataset.score = call.score;
  const name = row.insertCell();
  if (call.href) {
    const link = document.createElement("a");
    link.href = call.href;
    link.textContent = call.id;
    name.append(link);
  } else {
    name.textContent = call.id + " ";
    const why = document.createElement("span");
    why.className = "muted";
    why.textContent = "(没有页面:" + call.problem + ")";
    name.append(why);
  }
  cell(row, call.agent);
  cell(row, data.verdicts[call.verdict], "verdict v-" + call.verdict);
  cell(row, String(call.score), "num");
  cell(row, call.rules.map((rule) => data.rules[rule] || rule).join("、"), "rules");
  const done = reviewed(call);
  cell(row, call.findings.length ? done + "/" + call.findings.length : "-",
       call.findings.length && done === call.findings.length ? "reviewed done" : "reviewed");
  cell(row, call.source);
}

function show() {
  let shown = calls.filter(keep);
  if (state.sort) {
    const sign = state.desc ? -1 : 1;
    const value = (call) => numeric.has(state.sort) ? Number(call[state.sort]) : call[state.sort];
    shown = shown.slice().sort((a, b) => sign * (value(a) < value(b) ? -1 : value(a) > value(b) ? 1 : 0));
  }
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages);
  body.replaceChildren();
  for (const call of shown.slice((state.page - 1) * PAGE_SIZE, state.page * PAGE_SIZE)) render(call);
  document.getElementById("shown").textContent = "共 " + calls.length + " 通,显示 " + shown.length + " 通";
  document.getElementById("page").textContent = "第 " + state.page + " / " + pages + " 页";
  document.getElementById("page-previous").disabled = state.page <= 1;
  document.getElementById("page-next").disabled = state.page >= pages;
  for (const header of table.tHead.querySelectorAll("th")) {
    const button = header.querySelector("[data-sort]");
    header.setAttribute("aria-sort", button && button.dataset.sort === state.sort
      ? (state.desc ? "descending" : "ascending") : "none");
  }
  writeState();
}

function change(name, value) {
  state[name] = value;
  state.page = 1;
  show();
}

for (const [name, control] of Object.entries(controls)) {
  control.addEventListener(name === "q" ? "input" : "change", () => change(name, control.value.trim()));
}
for (const button of document.querySelectorAll("[data-sort]")) {
  button.addEventListener("click", () => {
    state.desc = state.sort === button.dataset.sort ? !state.desc : false;
    state.sort = button.dataset.sort;
    show();
  });
}
for (const button of document.querySelectorAll("[data-pick]")) {
  button.addEventListener("click", () => {
    controls[button.dataset.pick].value = button.dataset.value;
    change(button.dataset.pick, button.dataset.value);
    table.scrollIntoView();
  });
}
document.getElementById("page-previous").addEventListener("click", () => { state.page -= 1; show(); });
document.getElementById("page-next").addEventListener("click", () => { state.page += 1; show(); });
document.getElementById("clear").addEventListener("click", () => {
  for (const control of Object.values(controls)) control.value = "";
  state = {page: 1};
  show();
});

// Export: this report's decisions from localStorage, as the file `audit review import` reads.
document.getElementById("export").addEventListener("click", () => {
  const mine = new Set(calls.flatMap((call) => call.findings));
  const decisions = [];
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (key.startsWith(STORE) && mine.has(key.slice(STORE.length))) {
      decisions.push(JSON.parse(localStorage.getItem(key)));
    }
  }
  decisions.sort((a, b) => (a.decided_at < b.decided_at ? -1 : 1));
  const file = JSON.stringify({schema: "audit-review/1", run: data.run,
                               exported_at: new Date().toISOString(), decisions}, null, 1);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([file], {type: "application/json"}));
  link.download = "review-" + new Date().toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "-") + ".json";
  document.body.append(link);
  link.click();
  link.remove();
  document.getElementById("exported").textContent = "已导出 " + decisions.length + " 条审核决定:" + link.download;
});

readState();
show();
