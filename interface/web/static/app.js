// A little progressive enhancement; every page works without it.
(function () {
  "use strict";
  // Preselect the browser's time zone in the time-zone pickers until one was chosen (nothing is submitted).
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { zone = null; }
  if (zone) {
    document.querySelectorAll("select[name=tz][data-chosen='0']").forEach(function (select) {
      for (var i = 0; i < select.options.length; i++) {
        if (select.options[i].value === zone) { select.value = zone; break; }
      }
    });
  }
})();
