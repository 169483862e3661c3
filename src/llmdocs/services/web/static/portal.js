// The portal's one script: keyboard shortcuts. Everything works without it.
"use strict";
document.addEventListener("keydown", function (event) {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  var active = document.activeElement;
  var typing = active && (active.isContentEditable ||
    /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
  if (typing) return;
  var target = document.querySelector("[data-focus-key='/']");
  if (!target) return;
  event.preventDefault();
  target.focus();
  if (target.select) target.select();
});
