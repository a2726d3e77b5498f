"use strict";
const player = document.getElementById("call-audio");
for (const button of document.querySelectorAll("[data-seek]")) {
  button.addEventListener("click", () => {
    player.currentTime = Number(button.dataset.seek);
    player.play();
  });
}
// while the call plays: a playhead on the timeline, and the utterance being spoken highlighted
const playhead = document.getElementById("playhead");
const lines = Array.from(document.querySelectorAll(".transcript li[data-start]"));
if (player && playhead) {
  const duration = Number(document.getElementById("timeline").dataset.duration);
  player.addEventListener("timeupdate", () => {
    const t = player.currentTime;
    const x = (100 * Math.min(Math.max(t / duration, 0), 1)).toFixed(2) + "%";  // as the chart's own x
    playhead.setAttribute("x1", x);
    playhead.setAttribute("x2", x);
    for (const line of lines) {
      line.classList.toggle("playing", Number(line.dataset.start) <= t && t < Number(line.dataset.end));
    }
  });
}

// Decisions: one per finding, kept in localStorage under the finding's key until the index
// exports them for `audit review import`. A decision imported earlier comes with the page
// (data-stored) and shows until this browser makes its own.
const STORE = "audit-review:";
const NAMES = {confirm: "已确认", dismiss: "已驳回"};
const reviewer = document.getElementById("reviewer");
if (reviewer) {
  reviewer.value = localStorage.getItem("audit-reviewer") || "";
  reviewer.addEventListener("change", () => localStorage.setItem("audit-reviewer", reviewer.value.trim()));
}

function saved(article) {
  const own = localStorage.getItem(STORE + article.dataset.finding);
  if (own) return {...JSON.parse(own), local: true};
  return article.dataset.stored ? JSON.parse(article.dataset.stored) : null;
}

function showDecision(article) {
  const decision = saved(article);
  const output = article.querySelector(".decided");
  article.dataset.decision = decision ? decision.decision : "";
  for (const button of article.querySelectorAll(".decide")) {
    button.setAttribute("aria-pressed", String(Boolean(decision) && button.dataset.decision === decision.decision));
  }
  article.querySelector(".undo").hidden = !(decision && decision.local);
  if (!decision) {
    output.textContent = "待审核";
    return;
  }
  article.querySelector(".reason").value = decision.reason;
  article.querySelector(".note").value = decision.note || "";
  output.textContent = NAMES[decision.decision] + "(" + decision.reason + ")," + decision.reviewer + ","
    + decision.decided_at.slice(0, 16).replace("T", " ") + (decision.local ? "" : ",已导入");
}

function decide(article, decision) {
  const name = reviewer.value.trim();
  if (!name) {
    article.querySelector(".decided").textContent = "请先填写审核人";
    reviewer.focus();
    return;
  }
  localStorage.setItem("audit-reviewer", name);
  localStorage.setItem(STORE + article.dataset.finding, JSON.stringify({
    finding: article.dataset.finding, call: article.dataset.call, rule_id: article.dataset.rule,
    moment: article.dataset.moment, decision, reason: article.querySelector(".reason").value,
    note: article.querySelector(".note").value.trim(), reviewer: name, decided_at: new Date().toISOString()}));
  showDecision(article);
}

for (const article of document.querySelectorAll("article[data-finding]")) {
  for (const button of article.querySelectorAll(".decide")) {
    button.addEventListener("click", () => decide(article, button.dataset.decision));
  }
  for (const field of article.querySelectorAll(".reason, .note")) {  // a changed reason updates a decision made here
    field.addEventListener("change", () => {
      const decision = saved(article);
      if (decision && decision.local) decide(article, decision.decision);
    });
  }
  article.querySelector(".undo").addEventListener("click", () => {
    localStorage.removeItem(STORE + article.dataset.finding);
    showDecision(article);
  });
  showDecision(article);
}

// Keys, for working through a call without the mouse: j / k the next / previous finding, c confirm
// it, x dismiss it, n / p the next / previous flagged call.
const findings = Array.from(document.querySelectorAll("article[data-finding]"));
let current = Math.max(0, findings.findIndex((article) => "#" + article.id === location.hash));

function go(index) {
  if (!findings.length) return;
  current = Math.min(Math.max(index, 0), findings.length - 1);
  location.hash = findings[current].id;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest("input, select, textarea")) return;
  const link = {n: "next-call", p: "previous-call"}[event.key];
  if (link && document.getElementById(link)) document.getElementById(link).click();
  else if (event.key === "j") go(current + 1);
  else if (event.key === "k") go(current - 1);
  else if ((event.key === "c" || event.key === "x") && findings.length) {
    decide(findings[current], event.key === "c" ? "confirm" : "dismiss");
  } else return;
  event.preventDefault();
});
