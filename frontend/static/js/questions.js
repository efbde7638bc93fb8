// The room's questions (portal/_questions.html #questions): the list by votes, kept up by the
// room's frames the chat's socket receives (live.js hands each on as a "kaifang:room-frame"
// event: `question` for a question asked, marked or merged, `votes` for batched counts), with
// GET /api/events/{id}/questions as a safety net every 30 s and when the socket says hello; a
// vote per question (POST /api/questions/{id}/votes, aria-pressed once voted, a 409
// already_voted taken as voted); and the ask form, which joins first with a nickname when the
// viewer cookie names nobody. One viewer for the page: a join in the chat hides this panel's
// nickname field, and a join here starts the chat ("kaifang:joined"). Every text goes in as
// textContent: markup in a question shows as the characters typed.
(function () {
  "use strict";
  var panel = document.getElementById("questions");
  if (!panel || !window.fetch) return;

  var text = JSON.parse(panel.dataset.text);
  var eventId = panel.dataset.eventId;
  var isOpen = panel.dataset.open === "1";
  var refreshMs = (parseInt(panel.dataset.refresh, 10) || 30) * 1000;
  var list = panel.querySelector(".questions-list");
  var empty = panel.querySelector(".questions-empty");
  var notice = panel.querySelector(".questions-notice");
  var form = panel.querySelector(".questions-ask");
  var join = panel.querySelector(".questions-join");
  var voting = {}; // id → true while its vote is on its way
  var shown = []; // the questions listed, as the API and the frames give them
  var loaded = false; // shown holds the list (until then the page shows the server's)
  var mine = {}; // id → the count this page's own vote was answered with: a list read before
                 // the vote came back (an older GET, a frame) never unpresses it
  var asked = 0, drawn = 0; // GETs sent, and the newest whose answer is on the page
  var PUBLIC = {approved: true, shortlisted: true, answering: true, answered: true};

  function fill(template, parts) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(parts[name]); });
  }

  function say(message, isError) {
    notice.textContent = message || "";
    notice.classList.toggle("error", !!isError);
    notice.hidden = !message;
  }

  function el(tag, className, words) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (words !== undefined) node.textContent = words;
    return node;
  }

  function item(q) {
    var li = el("li", "question-item" + (q.state === "answering" ? " is-answering" : "") +
                (q.state === "answered" ? " is-answered" : ""));
    li.dataset.id = q.id;
    if (q.state === "answering") li.appendChild(el("p", "question-badge", text.answering));
    li.appendChild(el("p", "question-text", q.text));
    var meta = el("p", "question-meta");
    meta.appendChild(el("span", "question-author", q.author));
    if (q.state === "answered") {
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(el("span", "question-done", text.answered));
    }
    var button = el("button", "question-vote secondary");
    button.type = "button";
    button.dataset.id = q.id;
    button.setAttribute("aria-pressed", q.voted ? "true" : "false");
    button.setAttribute("aria-label", q.voted ? text.voted : fill(text.vote, {count: q.votes}));
    button.disabled = !!(q.voted || !isOpen || q.state === "answered" || voting[q.id]);
    var thumb = el("span", "", "▲");
    thumb.setAttribute("aria-hidden", "true");
    button.appendChild(thumb);
    button.appendChild(document.createTextNode(" "));
    button.appendChild(el("span", "question-votes", String(q.votes)));
    meta.appendChild(button);
    li.appendChild(meta);
    if (q.answer) {
      var box = el("div", "question-answer");
      box.appendChild(el("p", "question-answer-label", text.answer));
      box.appendChild(el("p", "question-answer-text", q.answer));
      li.appendChild(box);
    }
    return li;
  }

  // Most votes first, ties: the older first (the API's order).
  function byVotes(a, b) { return b.votes - a.votes || a.id - b.id; }

  function render(questions) {
    questions.forEach(function (q) {
      if (Object.prototype.hasOwnProperty.call(mine, q.id)) {
        q.voted = true;
        q.votes = Math.max(q.votes, mine[q.id]);
      }
    });
    shown = questions.slice().sort(byVotes);
    questions = shown;
    // Keep the keyboard where it was: the focused vote button is found again by its id.
    var focused = document.activeElement && list.contains(document.activeElement)
      ? document.activeElement.dataset.id : null;
    list.textContent = "";
    questions.forEach(function (q) { list.appendChild(item(q)); });
    empty.hidden = questions.length > 0;
    if (focused) {
      var again = list.querySelector('.question-vote[data-id="' + String(parseInt(focused, 10)) + '"]');
      if (again && !again.disabled) again.focus();
    }
  }

  function load() {
    var number = ++asked;
    return fetch("/api/events/" + eventId + "/questions?sort=votes",
                 {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (questions) {
        // Answers may come back out of order: one older than the list shown is dropped.
        if (!questions || number < drawn) return;
        drawn = number;
        loaded = true;
        render(questions);
      })
      .catch(function () { /* the next refresh tries again */ });
  }

  function send(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return {status: response.status, body: answer};
      });
    });
  }

  // A `question` frame: the question joins, changes or leaves the list; `votes`: new counts.
  function onFrame(frame) {
    if (frame.type === "hello" || !loaded) {
      load();  // (re)connected, or not read yet: the list as it is now
    } else if (frame.type === "question" && frame.id) {
      var known = shown.filter(function (q) { return q.id === frame.id; })[0];
      var rest = shown.filter(function (q) { return q.id !== frame.id; });
      if (PUBLIC[frame.state] && typeof frame.text === "string") {
        frame.voted = known ? known.voted : false;
        rest.push(frame);
      }
      render(rest);
    } else if (frame.type === "votes" && frame.counts) {
      var changed = false;
      shown.forEach(function (q) {
        var votes = frame.counts[String(q.id)];
        if (typeof votes === "number" && votes !== q.votes) { q.votes = votes; changed = true; }
      });
      if (changed) render(shown);
    }
  }

  document.addEventListener("kaifang:room-frame", function (event) {
    if (event.detail) onFrame(event.detail);
  });

  // The chat's join names this viewer too: no second nickname asked here.
  document.addEventListener("kaifang:joined", function (event) {
    if (!event.detail || event.detail.from === "questions") return;
    if (join) join.hidden = true;
    say("", false);
  });

  var pendingVote = null; // the vote a join waits for

  // The same join as the comments panel's: the answer sets the viewer cookie.
  function joinRoom() {
    var nickname = join.querySelector("input").value.trim();
    if (!nickname) return Promise.resolve(false);
    return send("/api/events/" + eventId + "/viewers", {nickname: nickname})
      .then(function (answer) {
        if (answer.status !== 201) { say(text.joinFailed, true); return false; }
        join.hidden = true;
        say("", false);
        document.dispatchEvent(new CustomEvent("kaifang:joined", {
          detail: {nickname: answer.body.nickname, from: "questions"}}));
        return true;
      });
  }

  function needJoin() {
    if (join) join.hidden = false;
    if (form) form.hidden = false;
    say(text.joinFirst, true);
    var input = join && join.querySelector("input");
    if (input) input.focus();
  }

  function markVoted(id, votes) {
    mine[id] = typeof votes === "number" ? votes : 0;
    var button = list.querySelector('.question-vote[data-id="' + String(id) + '"]');
    if (!button) return;
    button.setAttribute("aria-pressed", "true");
    button.setAttribute("aria-label", text.voted);
    button.disabled = true;
    if (typeof votes === "number") button.querySelector(".question-votes").textContent = String(votes);
    shown.forEach(function (q) {
      if (q.id === id) {
        q.voted = true;
        if (typeof votes === "number") q.votes = Math.max(q.votes, votes);
      }
    });
  }

  function castVote(id) {
    var button = list.querySelector('.question-vote[data-id="' + String(id) + '"]');
    if (!button || button.disabled) return;
    // Tried even when this page has not joined: the comments panel may have (its cookie).
    voting[id] = true;
    button.disabled = true;
    send("/api/questions/" + id + "/votes", {}).then(function (answer) {
      delete voting[id];
      if (answer.status === 201) {
        say("", false);
        markVoted(id, answer.body.votes);
      } else if (answer.status === 409 && answer.body.error === "already_voted") {
        markVoted(id);
      } else if (answer.status === 401) {
        button.disabled = false;
        pendingVote = id;
        needJoin();
      } else {
        button.disabled = false;
        say(text[answer.body.error] || text.failed, true);
      }
    }, function () {
      delete voting[id];
      button.disabled = false;
      say(text.failed, true);
    });
  }

  list.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".question-vote") : null;
    if (button && !button.disabled) castVote(parseInt(button.dataset.id, 10));
  });

  if (join) {
    join.querySelector(".questions-join-go").addEventListener("click", function () {
      joinRoom().then(function (ok) {
        if (ok && pendingVote !== null) { var id = pendingVote; pendingVote = null; castVote(id); }
      }, function () { say(text.failed, true); });
    });
  }

  function ask(words) {
    return send("/api/events/" + eventId + "/questions", {text: words}).then(function (answer) {
      if (answer.status === 201) {
        form.querySelector("textarea").value = "";
        say(answer.body.state === "held" ? text.held : text.published, false);
        if (answer.body.state !== "held") onFrame(Object.assign({type: "question"}, answer.body));
      } else if (answer.status === 401) {
        needJoin();
      } else {
        say(text[answer.body.error] || text.failed, true);
      }
    });
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var words = form.querySelector("textarea").value.trim();
      var submit = form.querySelector(".questions-submit");
      if (!words) return;
      submit.disabled = true;
      var ready = Promise.resolve(true);
      // Without a nickname the question is tried as it is (the comments panel may have
      // joined); a 401 asks for one.
      if (!join.hidden && join.querySelector("input").value.trim()) ready = joinRoom();
      ready.then(function (ok) { return ok ? ask(words) : null; })
        .catch(function () { say(text.failed, true); })
        .then(function () { submit.disabled = false; });
    });
    if (isOpen) form.hidden = false;
  }

  load();
  window.setInterval(function () { if (!document.hidden) load(); }, refreshMs);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) load(); });
}());
