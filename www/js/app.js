document.getElementById("status").textContent =
  "JavaScript ran: this page, its stylesheet, script and image came from lanthorn.";
