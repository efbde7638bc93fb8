/* Console: small helpers; every page works without this file. */
(function () {
  "use strict";
  // Bring the error summary into view and to the keyboard after a failed save.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  // The premiere time is for the live room only: dim it for other kinds.
  var kind = document.getElementById("kind");
  var premiere = document.getElementById("premiere-field");
  function syncPremiere() {
    if (!kind || !premiere) { return; }
    var input = premiere.querySelector("input");
    var relevant = kind.value === "broadcast" || (input && input.value);
    premiere.hidden = !relevant;
  }
  if (kind) { kind.addEventListener("change", syncPremiere); syncPremiere(); }

  // Comments are moderated in the online room: an in-person meeting has none to ask about.
  var mode = document.getElementById("mode");
  var moderation = document.getElementById("moderation-field");
  function syncModeration() {
    if (!mode || !moderation) { return; }
    moderation.hidden = mode.value === "in_person";
    var room = moderation.closest("fieldset");
    if (room) { room.hidden = moderation.hidden && (!premiere || premiere.hidden); }
  }
  if (mode) { mode.addEventListener("change", syncModeration); syncModeration(); }
  if (kind) { kind.addEventListener("change", syncModeration); }
})();
