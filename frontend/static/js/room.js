// The live room's countdown: ticks every second from the server's clock (data-now), so a
// phone whose clock is off still counts right. Without script the page shows the server's text.
(function () {
  "use strict";
  var el = document.querySelector(".room-countdown");
  if (!el) return;
  var startsAt = Date.parse(el.dataset.startsAt);
  var skew = Date.parse(el.dataset.now) - Date.now();
  function fill(template, parts) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return String(parts[name]); });
  }
  function tick() {
    var left = Math.floor((startsAt - (Date.now() + skew)) / 1000);
    if (left <= 0) {
      el.textContent = el.dataset.started;
      // A premiere starts for everyone at once: the page comes back with the player.
      if (el.dataset.reload) window.setTimeout(function () { window.location.reload(); }, 1500);
      return;
    }
    var parts = {days: Math.floor(left / 86400), hours: Math.floor(left % 86400 / 3600),
                 minutes: Math.floor(left % 3600 / 60), seconds: left % 60};
    var template = parts.days ? el.dataset.days : parts.hours ? el.dataset.hours
      : el.dataset.minutes;
    el.textContent = fill(template, parts);
    window.setTimeout(tick, 1000 - (Date.now() + skew) % 1000);
  }
  tick();
}());
