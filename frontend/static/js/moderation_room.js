/* The room's rules in the host's moderation console (console/live.html #room-form) and the
   viewer count: shown as the hosts' socket tells them (`hello`, `room`, `viewers`, handed on by
   moderation.js as "kaifang:room-frame" events), saved through PUT /api/events/{id}/room. */
(function () {
  "use strict";
  var k = window.kaifangModeration;
  if (!k) { return; }
  var eventId = k.eventId, texts = k.texts, say = k.say, request = k.request;
  var roomForm = document.getElementById("room-form");
  var roomState = document.getElementById("room-state");
  var viewerCount = document.getElementById("viewer-count");

  function showRules(rules) {
    roomState.textContent = rules.closed ? texts.closed : rules.open ? texts.open : texts.not_yet;
    roomState.classList.toggle("is-closed", !!rules.closed);
    var toggle = document.getElementById("room-toggle");
    if (toggle) {
      toggle.textContent = rules.closed ? texts.reopen : texts.close;
      toggle.value = rules.closed ? "0" : "1";
      toggle.className = rules.closed ? "" : "danger";
    }
    var radio = roomForm.querySelector('input[name="moderation"][value="' + rules.moderation +
                                       '"]');
    if (radio) { radio.checked = true; }
    var slow = roomForm.querySelector('select[name="slow_mode_s"]');
    if (slow) { slow.value = String(rules.slow_mode_s); }
  }

  if (roomForm) {
    roomForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = {};
      var chosen = roomForm.querySelector('input[name="moderation"]:checked');
      if (chosen) { body.moderation = chosen.value; }
      body.slow_mode_s = parseInt(roomForm.querySelector('select[name="slow_mode_s"]').value, 10);
      var submitter = event.submitter;
      if (submitter && submitter.name === "closed") { body.closed = submitter.value === "1"; }
      request("PUT", "/api/events/" + eventId + "/room", body).then(function (answer) {
        if (answer.status === 200) {
          showRules(answer.body);
          say(texts.saved);
        } else {
          say(texts.failed.replace("%(why)s", answer.body.message || String(answer.status)),
              "error");
        }
      });
    });
  }

  document.addEventListener("kaifang:room-frame", function (event) {
    var frame = event.detail || {};
    if (frame.type === "hello" || frame.type === "room") {
      showRules(frame);
    } else if (frame.type === "viewers") {
      viewerCount.textContent = String(frame.count);
    }
  });
}());
