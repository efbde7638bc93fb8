// The live room's list of messages (portal/room.html #live), for live.js: in seq order, once
// each, opened at the newest, with the latest pin on top, a "N new messages" button while the
// reader is scrolled up, and older messages a page at a time on request. Every text goes in as
// textContent: markup in a message shows as the characters typed.
window.KaifangLiveList = function (panel, text, eventId) {
  "use strict";
  var PAGE = 200;
  var list = panel.querySelector(".live-list");
  var empty = panel.querySelector(".live-empty");
  var lastSeq = parseInt(panel.dataset.lastSeq, 10) || 0;
  // The message a host pinned, on top of the list (the latest pin shows).
  var pinBar = document.createElement("p");
  pinBar.className = "live-pin-bar";
  pinBar.hidden = true;
  list.parentNode.insertBefore(pinBar, list);
  // "N new messages" below the list, while the reader is scrolled up.
  var unseen = 0;
  var pill = document.createElement("button");
  pill.type = "button";
  pill.className = "live-new";
  pill.hidden = true;
  list.insertAdjacentElement("afterend", pill);
  // The page opens with the room's last page: older messages a page at a time, on request.
  var earlier = document.createElement("button");
  earlier.type = "button";
  earlier.className = "live-earlier";
  earlier.textContent = text.earlier;
  list.parentNode.insertBefore(earlier, list);

  function fill(template, parts) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(parts[name]); });
  }

  function span(className, words) {
    var node = document.createElement("span");
    node.className = className;
    node.textContent = words;
    return node;
  }

  function byId(id) {
    return list.querySelector('[data-id="' + String(parseInt(id, 10)) + '"]');
  }

  function item(message) {
    var li = document.createElement("li");
    li.className = "live-item" + (message.kind === "reply" ? " live-reply" : "");
    li.dataset.id = message.id;
    li.dataset.seq = message.seq;
    if (message.kind === "reply") {
      // 官方回复 under the unit's name, after a quote of what it answers (when it is shown).
      li.appendChild(span("live-official", text.official));
      li.appendChild(document.createTextNode(" "));
      var asked = message.reply_to && byId(message.reply_to);
      if (asked) {
        var quote = document.createElement("p");
        quote.className = "live-quote";
        var words = asked.querySelector(".live-text").textContent;
        quote.textContent = fill(text.replyTo, {
          author: asked.querySelector(".live-author").textContent,
          text: words.length > 40 ? words.slice(0, 40) + "…" : words});
        li.appendChild(quote);
      }
    }
    li.appendChild(span("live-author", message.author));
    if (message.registered) {
      li.appendChild(document.createTextNode(" "));
      li.appendChild(span("live-registered", text.registered));
    }
    if (message.kind === "question") {
      li.appendChild(document.createTextNode(" "));
      li.appendChild(span("live-kind", text.question));
    }
    var body = document.createElement("p");
    body.className = "live-text";
    body.textContent = message.text;
    li.appendChild(body);
    return li;
  }

  function atBottom() {
    return list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  }

  function toBottom() {
    list.scrollTop = list.scrollHeight;
    unseen = 0;
    pill.hidden = true;
  }

  // In seq order, once each: two approvals may reach the page in either order. `quiet`: one
  // of the room's last page (a reset), not news: no button. Whether it is new to the list.
  function add(message, quiet) {
    if (typeof message.seq !== "number" ||
        list.querySelector('[data-seq="' + message.seq + '"]')) return false; // shown already
    lastSeq = Math.max(lastSeq, message.seq);
    var nearBottom = atBottom();
    var later = Array.prototype.find.call(list.children, function (other) {
      return parseInt(other.dataset.seq, 10) > message.seq;
    });
    list.insertBefore(item(message), later || null);
    empty.hidden = true;
    if (nearBottom) {
      toBottom();
    } else if (!later && !quiet) {
      unseen += 1;
      pill.textContent = fill(text.unseen, {count: unseen});
      pill.hidden = false;
    }
    return true;
  }

  function firstSeq() {
    var first = list.firstElementChild;
    return first ? parseInt(first.dataset.seq, 10) : lastSeq + 1;
  }

  function showEarlier() {
    earlier.hidden = firstSeq() <= 1;
  }

  // The page before the first shown, on top, the reader's place in the list kept.
  function loadEarlier() {
    var before = firstSeq();
    earlier.disabled = true;
    fetch("/api/events/" + eventId + "/comments?before=" + before + "&limit=" + PAGE,
          {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (messages) {
        var height = list.scrollHeight;
        var fragment = document.createDocumentFragment();
        messages.forEach(function (message) {
          if (!list.querySelector('[data-seq="' + message.seq + '"]')) {
            var li = item(message);
            li.classList.toggle("live-pinned", !!message.pinned);
            fragment.appendChild(li);
          }
        });
        list.insertBefore(fragment, list.firstElementChild);
        list.scrollTop += list.scrollHeight - height;
        empty.hidden = list.children.length > 0;
        if (!messages.length) earlier.hidden = true; else showEarlier();
      })
      .catch(function () { /* the button stays: try again */ })
      .then(function () { earlier.disabled = false; });
  }

  function remove(id) {
    var found = byId(id);
    if (found) found.parentNode.removeChild(found);
    empty.hidden = list.children.length > 0;
    showPinned();
  }

  function pin(id, pinned) {
    var found = byId(id);
    if (found) found.classList.toggle("live-pinned", pinned);
    showPinned();
  }

  // Exactly these are pinned (a socket's hello says so).
  function pinOnly(ids) {
    var pinned = {};
    (ids || []).forEach(function (id) { pinned[id] = true; });
    Array.prototype.forEach.call(list.children, function (li) {
      li.classList.toggle("live-pinned", !!pinned[li.dataset.id]);
    });
    showPinned();
  }

  function showPinned() {
    var pinned = list.querySelectorAll(".live-pinned");
    var latest = pinned.length ? pinned[pinned.length - 1] : null;
    pinBar.hidden = !latest;
    pinBar.textContent = "";
    if (!latest) return;
    pinBar.appendChild(span("live-pin-label", text.pinned));
    pinBar.appendChild(document.createTextNode(" "));
    pinBar.appendChild(span("live-author", latest.querySelector(".live-author").textContent));
    pinBar.appendChild(document.createTextNode("："));
    pinBar.appendChild(span("live-pin-text", latest.querySelector(".live-text").textContent));
  }

  // Too far behind (or new): the room's last page follows; what is shown goes.
  function reset(first) {
    list.textContent = "";
    earlier.hidden = !(first > 1);
  }

  pill.addEventListener("click", toBottom);
  earlier.addEventListener("click", loadEarlier);
  showEarlier();
  list.addEventListener("scroll", function () { if (atBottom()) toBottom(); }, {passive: true});
  toBottom(); // the newest first in view

  return {add: add, remove: remove, pin: pin, pinOnly: pinOnly, reset: reset,
          lastSeq: function () { return lastSeq; }};
};
