/* The approved messages of the host's moderation console (console/live.html #approved): shown
   in seq order once each, whether the hosts' socket, a poll or a decision's answer brings them
   first; pin or unpin, reply (官方回复) and take down on each. moderation.js feeds it through
   window.kaifangModeration.approved. */
(function () {
  "use strict";
  var k = window.kaifangModeration;
  if (!k) { return; }
  var eventId = k.eventId, texts = k.texts, el = k.el, say = k.say, request = k.request,
    button = k.button, replyBox = k.replyBox, post = k.post;
  var approvedList = document.getElementById("approved");

  // ---- the approved messages ---------------------------------------------------------------
  function approvedItem(id) {
    return approvedList.querySelector('[data-id="' + String(parseInt(id, 10)) + '"]');
  }

  // In seq order, once each, whether the socket, a poll or a decision's answer brings it first.
  function showApproved(message) {
    if (!message.seq || approvedList.querySelector('[data-seq="' + message.seq + '"]')) {
      return;
    }
    var item = el("li", (message.pinned ? "is-pinned" : "") +
                  (message.kind === "reply" ? " is-reply" : ""));
    item.setAttribute("data-seq", String(message.seq));
    item.setAttribute("data-id", String(message.id));
    item.appendChild(el("span", "seq", "#" + message.seq));
    item.appendChild(document.createTextNode(" "));
    if (message.kind === "reply") {
      item.appendChild(el("span", "official", texts.official));
      item.appendChild(document.createTextNode(" "));
    }
    item.appendChild(el("span", "author", message.author));
    item.appendChild(document.createTextNode(" "));
    item.appendChild(el("span", "approved-text", message.text));
    decorate(item);
    var later = Array.prototype.find.call(approvedList.children, function (other) {
      return parseInt(other.getAttribute("data-seq"), 10) > message.seq;
    });
    approvedList.insertBefore(item, later || null);
    k.approvedChanged();
  }

  // Pin or unpin, and reply, on an approved message (not on a reply).
  function decorate(item) {
    if (item.classList.contains("is-reply") || item.classList.contains("is-removed")) { return; }
    var old = item.querySelector(".approved-actions");
    if (old) { old.remove(); }
    var id = item.getAttribute("data-id");
    var pinned = item.classList.contains("is-pinned");
    var actions = el("span", "approved-actions");
    actions.appendChild(button(pinned ? texts.unpin : texts.pin,
                               pinned ? "unpin" : "pin-approved", id));
    actions.appendChild(button(texts.reply, "reply-approved", id));
    actions.appendChild(button(texts.remove, "remove-approved", id));
    item.appendChild(actions);
  }

  function markPinned(id, pinned) {
    var item = approvedItem(id);
    if (!item) { return; }
    item.classList.toggle("is-pinned", pinned);
    decorate(item);
  }

  function markRemoved(id) {
    var item = approvedItem(id);
    if (!item) { return; }
    item.classList.add("is-removed");
    item.classList.remove("is-pinned");
    var old = item.querySelector(".approved-actions");
    if (old) { old.remove(); }
    item.appendChild(el("span", "removed-note", texts.removed));
    k.approvedChanged();
  }

  // The seq up to which the list has no gap (a decision's answer may bring a later one first).
  function shownUpTo() {
    var upTo = 0;
    Array.prototype.some.call(approvedList.children, function (item) {
      var seq = parseInt(item.getAttribute("data-seq"), 10);
      if (upTo && seq !== upTo + 1) { return true; }
      upTo = seq;
      return false;
    });
    return upTo;
  }

  function loadApproved() {
    return fetch("/api/events/" + eventId + "/comments?after=" + shownUpTo() + "&limit=200",
                 {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (messages) { messages.forEach(showApproved); })
      .catch(function () { /* the next poll tries again */ });
  }

  function pinApproved(id, pin) {
    post(id, pin ? "pin" : "unpin").then(function (answer) {
      if (answer.status === 200) {
        markPinned(id, pin);
        say(pin ? texts.pinned_only : texts.unpinned);
      } else {
        say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
            "error");
      }
    });
  }

  // A reply to an approved message: a box under it in the approved list.
  function replyToApproved(id) {
    var item = approvedItem(id);
    if (!item || item.querySelector(".reply-box")) { return; }
    var author = item.querySelector(".author");
    var box = replyBox("reply-approved-" + id, author ? author.textContent : "", function (text) {
      request("POST", "/api/comments/" + id + "/replies", {text: text}).then(function (answer) {
        if (answer.status === 201) {
          box.remove();
          say(texts.replied);
          loadApproved();
        } else {
          say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
              "error");
        }
      });
    }, function () { box.remove(); });
    item.appendChild(box);
    box.querySelector("textarea").focus();
  }

  approvedList.addEventListener("click", function (event) {
    var target = event.target;
    var action = target && target.getAttribute ? target.getAttribute("data-action") : null;
    var id = target && target.getAttribute ? target.getAttribute("data-id") : null;
    if (action === "pin-approved") { pinApproved(id, true); }
    else if (action === "unpin") { pinApproved(id, false); }
    else if (action === "reply-approved") { replyToApproved(id); }
    else if (action === "remove-approved") {
      post(id, "reject").then(function (answer) {
        if (answer.status === 200) {
          markRemoved(id);
          say(texts.removed);
        } else {
          say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
              "error");
        }
      });
    }
  });
  Array.prototype.forEach.call(approvedList.querySelectorAll("li[data-id]"), decorate);
  k.approved = {show: showApproved, markPinned: markPinned, markRemoved: markRemoved,
                shownUpTo: shownUpTo, load: loadApproved};
}());
