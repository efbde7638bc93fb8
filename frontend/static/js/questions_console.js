/* The hosts' questions panel (console/_questions.html #questions): every question of the
   session by votes, kept up by the hosts' socket's frames (moderation.js hands each on as a
   "kaifang:room-frame" event: `question` for a question asked, held, decided, marked or merged,
   `votes` for batched counts), re-read through GET /api/events/{id}/questions?state=all when the
   socket says hello and every 30 s as a safety net; the actions its state allows (the domain's
   table, streaming.questions.actions_of) through the JSON API (POST /api/questions/{id}/moderation,
   PUT /api/questions/{id}/answer: the written answer, the moment of the recording as m:ss,
   a suggestion's outcome and reason) with the CSRF header, as moderation.js sends it. A question
   another host handled first (409 already_handled) is said so and the list reloads. Merge
   picks the other question from a list; the answer opens a textarea. While one of these is
   open the refresh waits, so typing is never lost. Every text is set as text, never as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("questions");
  if (!root || !window.fetch || !window.JSON) { return; }

  var eventId = root.getAttribute("data-event-id");
  var pollMs = (parseFloat(root.getAttribute("data-poll")) || 30) * 1000;
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var data = JSON.parse(document.getElementById("questions-console-data").textContent);
  var texts = data.texts;
  var list = document.getElementById("questions-host-list");
  var empty = document.getElementById("questions-empty");
  var count = document.getElementById("questions-count");
  var notice = document.getElementById("moderation-notice");
  var questions = [];
  var editing = null;  // {id, kind: "merge" | "answer"} while a host fills one in
  var busy = false;
  var stale = false;  // frames came while a form was open: drawn once it closes
  var PUBLIC = {approved: true, shortlisted: true, answering: true, answered: true};

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function say(text, tone) {
    if (!notice) { return; }
    notice.textContent = text;
    notice.className = "moderation-notice tone-" + (tone || "ok");
    notice.hidden = false;
  }

  function button(label, action, id) {
    var node = el("button", "secondary", label);
    node.type = "button";
    node.setAttribute("data-action", action);
    node.setAttribute("data-id", String(id));
    return node;
  }

  function mergeForm(q) {
    var box = el("p", "question-action-form question-merge");
    var label = el("label", "", texts.into);
    var select = el("select", "question-into");
    label.setAttribute("for", "into-" + q.id);
    select.id = "into-" + q.id;
    questions.forEach(function (other) {
      if (other.id === q.id || !PUBLIC[other.state]) { return; }
      var option = el("option", "", "#" + other.id + " " + other.text.slice(0, 40));
      option.value = String(other.id);
      select.appendChild(option);
    });
    box.appendChild(label);
    box.appendChild(select);
    box.appendChild(button(data.actions.merge, "merge-go", q.id));
    box.appendChild(button(texts.cancel, "cancel", q.id));
    return box;
  }

  function field(box, tag, className, id, text) {
    var label = el("label", "", text);
    var node = el(tag, className);
    node.id = id;
    label.setAttribute("for", id);
    box.appendChild(label);
    box.appendChild(node);
    return node;
  }

  function clock(seconds) {
    var whole = Math.max(0, Math.floor(seconds));
    var h = Math.floor(whole / 3600), m = Math.floor(whole % 3600 / 60), s = whole % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(s);
  }

  // m:ss, h:mm:ss or seconds; "" none; NaN for what is neither (the API says why).
  function seconds(text) {
    text = text.trim().replace("：", ":");
    if (!text) { return null; }
    return text.split(":").reduce(function (sum, part) {
      return /^\d+(\.\d+)?$/.test(part) ? sum * 60 + parseFloat(part) : NaN;
    }, 0);
  }

  function answerForm(q) {
    var box = el("div", "question-answer-form");
    var label = el("label", "", texts.answer_label);
    var area = el("textarea", "question-answer-input");
    area.id = "answer-" + q.id;
    area.rows = 3;
    area.maxLength = 2000;
    area.value = q.answer || "";
    label.setAttribute("for", area.id);
    box.appendChild(label);
    box.appendChild(area);
    // The moment of the recording (m:ss), a suggestion's outcome and its reason.
    var at = field(box, "input", "question-answer-at", "at-" + q.id, texts.at_label);
    at.setAttribute("inputmode", "numeric");
    at.placeholder = "12:05";
    at.value = q.answered_at_video_time === null || q.answered_at_video_time === undefined
      ? "" : clock(q.answered_at_video_time);
    var outcome = field(box, "select", "question-answer-outcome", "outcome-" + q.id,
                        texts.outcome_label);
    [["", texts.no_outcome]].concat(Object.keys(data.outcomes).map(function (code) {
      return [code, data.outcomes[code]];
    })).forEach(function (pair) {
      var option = el("option", "", pair[1]);
      option.value = pair[0];
      option.selected = (q.outcome || "") === pair[0];
      outcome.appendChild(option);
    });
    var reason = field(box, "textarea", "question-answer-reason", "reason-" + q.id,
                       texts.reason_label);
    reason.rows = 2;
    reason.maxLength = 1000;
    reason.value = q.outcome_reason || "";
    var actions = el("p", "question-actions");
    actions.appendChild(button(texts.save, "answer-go", q.id));
    actions.appendChild(button(texts.cancel, "cancel", q.id));
    box.appendChild(actions);
    return box;
  }

  // While a merge or answer form is open, frames change the data, not the page (its typing is
  // kept); `force` draws anyway (the form opens or closes).
  function render(force) {
    if (editing && !force) { stale = true; return; }
    stale = false;
    list.textContent = "";
    questions.forEach(function (q) {
      var item = el("li", "question-item state-" + q.state +
                    (q.state === "answering" ? " is-answering" : ""));
      item.setAttribute("data-id", String(q.id));
      var head = el("p", "question-meta");
      head.appendChild(el("span", "question-number", "#" + q.id));
      head.appendChild(el("span", "question-author", q.author));
      head.appendChild(el("span", "question-state", data.states[q.state] || q.state));
      head.appendChild(el("span", "question-votes-count",
                          texts.votes.replace("%(count)s", String(q.votes))));
      item.appendChild(head);
      item.appendChild(el("p", "question-text", q.text));
      if (q.merged_into) {
        item.appendChild(el("p", "muted", texts.merged_into.replace("%(id)s", String(q.merged_into))));
      }
      if (q.answer) {
        var answer = el("div", "question-answer");
        answer.appendChild(el("p", "question-answer-label", texts.answer_label));
        answer.appendChild(el("p", "question-answer-text", q.answer));
        item.appendChild(answer);
      }
      var moment = q.answered_at_video_time;
      if ((moment !== null && moment !== undefined) || q.outcome) {
        var facts = el("p", "question-answer-facts");
        if (moment !== null && moment !== undefined) {
          facts.appendChild(el("span", "question-moment",
                               texts.moment.replace("%(time)s", clock(moment))));
        }
        if (q.outcome) {
          var badge = el("span", "answer-outcome", data.outcomes[q.outcome] || q.outcome);
          badge.setAttribute("data-outcome", q.outcome);
          facts.appendChild(badge);
        }
        if (q.outcome_reason) { facts.appendChild(el("span", "answer-reason", q.outcome_reason)); }
        item.appendChild(facts);
      }
      var offered = data.actions_of[q.state] || [];
      if (offered.length) {
        var actions = el("p", "question-actions");
        offered.forEach(function (action) {
          actions.appendChild(button(data.actions[action], action, q.id));
        });
        item.appendChild(actions);
      }
      if (editing && editing.id === q.id) {
        item.appendChild(editing.kind === "merge" ? mergeForm(q) : answerForm(q));
      }
      list.appendChild(item);
    });
    empty.hidden = questions.length > 0;
    count.textContent = String(questions.length);
  }

  // Most votes first, ties: the older first (the API's order).
  function sort() {
    questions.sort(function (a, b) { return b.votes - a.votes || a.id - b.id; });
  }

  function onFrame(frame) {
    if (frame.type === "hello" || frame.type === "resync") {
      load();
    } else if (frame.type === "question" && frame.id) {
      var known = questions.filter(function (q) { return q.id === frame.id; })[0];
      if (typeof frame.text === "string") {  // every field: it joins or replaces
        questions = questions.filter(function (q) { return q.id !== frame.id; });
        questions.push(frame);
      } else if (known) {  // left the public list: its state and where it went
        known.state = frame.state;
        known.merged_into = frame.merged_into;
      }
      sort();
      render();
    } else if (frame.type === "votes" && frame.counts) {
      questions.forEach(function (q) {
        var votes = frame.counts[String(q.id)];
        if (typeof votes === "number") { q.votes = votes; }
      });
      sort();
      render();
    }
  }

  document.addEventListener("kaifang:room-frame", function (event) {
    if (event.detail) { onFrame(event.detail); }
  });

  function load() {
    if (editing || busy) { return Promise.resolve(); }
    return fetch("/api/events/" + eventId + "/questions?state=all&sort=votes",
                 {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (found) {
        if (editing || busy) { return; }
        questions = found;
        render();
      })
      .catch(function () { say(texts.offline, "warn"); });
  }

  function call(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": csrf},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return {status: response.status, body: answer};
      });
    });
  }

  function act(method, url, body) {
    busy = true;
    return call(method, url, body).then(function (answer) {
      busy = false;
      if (answer.status === 200) {
        editing = null;
        say(texts.done);
      } else if (answer.status === 409 && answer.body.error === "already_handled") {
        editing = null;
        say(texts.already_handled, "warn");
      } else {
        say(texts.failed.replace("%(why)s", texts[answer.body.error] || answer.body.message ||
                                 String(answer.status)), "error");
      }
      return load();
    }, function () {
      busy = false;
      say(texts.offline, "warn");
    });
  }

  list.addEventListener("click", function (event) {
    var target = event.target;
    var action = target && target.getAttribute ? target.getAttribute("data-action") : null;
    if (!action || busy) { return; }
    var id = parseInt(target.getAttribute("data-id"), 10);
    var item = target.closest("li");
    if (action === "merge" || action === "answer") {
      editing = {id: id, kind: action};
      render(true);
      var field = list.querySelector('li[data-id="' + id + '"] select, li[data-id="' + id + '"] textarea');
      if (field) { field.focus(); }
    } else if (action === "cancel") {
      editing = null;
      render(true);
    } else if (action === "merge-go") {
      var into = parseInt(item.querySelector(".question-into").value, 10);
      act("POST", "/api/questions/" + id + "/moderation", {action: "merge", into: into});
    } else if (action === "answer-go") {
      var text = item.querySelector(".question-answer-input").value;
      var at = seconds(item.querySelector(".question-answer-at").value);
      var body = {text: text.trim() || at === null ? text : null,
                  outcome: item.querySelector(".question-answer-outcome").value,
                  reason: item.querySelector(".question-answer-reason").value};
      if (at !== null) { body.at_s = isNaN(at) ? -1 : at; }
      act("PUT", "/api/questions/" + id + "/answer", body);
    } else {
      act("POST", "/api/questions/" + id + "/moderation", {action: action});
    }
  });

  load();
  window.setInterval(function () { if (!document.hidden) { load(); } }, pollMs);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { load(); } });
}());
