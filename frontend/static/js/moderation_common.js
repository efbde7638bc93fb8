/* What the scripts of the host's moderation console share (console/live.html loads this one
   first): the page's texts, the CSRF header, the notice, the JSON calls and the buttons and
   reply boxes every list uses, as window.kaifangModeration. moderation.js runs the queue and the
   socket, moderation_approved.js the approved messages, moderation_room.js the room's rules,
   moderation_bans.js the bans. Every message's words are set as text, never as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("moderation");
  if (!root || !window.fetch || !window.JSON) { return; }

  var eventId = root.getAttribute("data-event-id");
  // The longest reply the room takes (streaming.texts.MAX_TEXT), as the page says it.
  var maxText = parseInt(root.getAttribute("data-max-text"), 10) || 0;
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var texts = JSON.parse(document.getElementById("moderation-text").textContent);
  var notice = document.getElementById("moderation-notice");
  var NOTICE_MS = 4000;
  var noticeTimer = null;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  function say(text, tone) {
    notice.textContent = text;
    notice.className = "moderation-notice tone-" + (tone || "ok");
    notice.hidden = false;
    if (noticeTimer) { window.clearTimeout(noticeTimer); }
    noticeTimer = window.setTimeout(function () { notice.hidden = true; }, NOTICE_MS);
  }

  function request(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRF-Token": csrf},
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return {status: response.status, body: answer};
      });
    });
  }

  function button(label, action, id) {
    var node = el("button", "secondary queue-action action-" + action, label);
    node.type = "button";
    node.setAttribute("data-action", action);
    node.setAttribute("data-id", String(id));
    return node;
  }

  // A reply form: Enter (or its button) calls send(text), Esc (or Cancel) calls cancel().
  function replyBox(fieldId, author, send, cancel) {
    var form = el("form", "reply-box");
    var label = el("label", "", texts.reply_label.replace("%(author)s", author));
    var area = el("textarea", "reply-text");
    area.id = fieldId;
    if (maxText) { area.maxLength = maxText; }
    area.rows = 2;
    label.htmlFor = area.id;
    var submit = el("button", "", texts.send_reply);
    submit.type = "submit";
    var back = el("button", "secondary", texts.cancel);
    back.type = "button";
    back.addEventListener("click", cancel);
    form.appendChild(label);
    form.appendChild(area);
    var row = el("p", "queue-actions");
    row.appendChild(submit);
    row.appendChild(back);
    form.appendChild(row);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (area.value.trim()) { send(area.value); }
    });
    area.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        if (area.value.trim()) { send(area.value); }
      } else if (event.key === "Escape") {
        event.preventDefault();
        cancel();
      }
    });
    return form;
  }


  // A decision on a message (POST /api/comments/{id}/moderation).
  function post(id, action) {
    return request("POST", "/api/comments/" + id + "/moderation", {action: action});
  }

  window.kaifangModeration = {
    root: root, eventId: eventId, texts: texts, el: el, say: say, request: request,
    button: button, replyBox: replyBox, post: post,
    approvedChanged: function () {}  // moderation.js keeps the ban form's choice in step
  };
}());
