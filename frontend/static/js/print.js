// The report's print button (console/compliance_report.html), without inline script (CSP).
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll(".print-button"), function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
}());
