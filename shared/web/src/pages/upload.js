// Progressive upload: drop a file on the form, watch it go up, land on its report. Without
// this script the same form posts and the server redirects to the report.
(function () {
  var form = document.getElementById("upload");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var zone = document.getElementById("drop");
  var input = document.getElementById("file");
  var bar = document.getElementById("progress");
  var status = document.getElementById("upload-status");
  function chosen() {
    status.textContent = input.files.length ? input.files[0].name : "";
  }
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; chosen(); }
  });
  input.addEventListener("change", chosen);
  form.addEventListener("submit", function (e) {
    if (!input.files.length) return;
    e.preventDefault();
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    bar.hidden = false;
    bar.value = 0;
    status.textContent = form.dataset.sending;
    request.upload.onprogress = function (p) { if (p.lengthComputable) bar.value = p.loaded / p.total; };
    request.onload = function () {
      if (request.status < 400) { window.location.assign(request.responseURL); return; }
      var page = new DOMParser().parseFromString(request.responseText, "text/html");
      var error = page.getElementById("error");
      status.textContent = error ? error.textContent : form.dataset.failed;
      bar.hidden = true;
    };
    request.onerror = function () { status.textContent = form.dataset.failed; bar.hidden = true; };
    request.send(new FormData(form));
  });
})();
