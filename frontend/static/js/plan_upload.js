// The plan item's upload forms (console/plan_item.html): the same POST, sent by XHR so the
// page shows its progress. Without JavaScript the form posts and redirects as usual; when the
// server refuses the file the form is posted once more the plain way, to show its message.
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form.plan-upload"), function (form) {
    var bar = form.querySelector(".plan-progress");
    var button = form.querySelector("button[type=submit]");
    if (!bar || !window.FormData || !window.XMLHttpRequest) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      bar.hidden = false;
      bar.value = 0;
      bar.setAttribute("aria-label", form.getAttribute("data-progress-label") || "");
      if (button) { button.disabled = true; }
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status < 400 && xhr.responseURL) {
          window.location.assign(xhr.responseURL);
        } else {
          form.submit();
        }
      });
      xhr.addEventListener("error", function () { form.submit(); });
      xhr.open("POST", form.action);
      xhr.send(new FormData(form));
    });
  });
}());
