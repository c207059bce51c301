// The book's Plotly figures follow the page's light or dark theme (the theme switcher, or the
// reader's system setting).  Figures are drawn with Plotly's "plotly_white" template; in dark mode
// this script gives them a transparent background, light text and dim grid lines, and swaps the
// near-black ink of prior samples for a light one; switching back restores the light look.
(function () {
  "use strict";
  var INK = "#111111", LIGHT_INK = "#e6e6e6";   // chartlib.report.figures.INK and its dark-mode stand-in
  var LOOKS = {
    light: {paper: "white", plot: "white", font: "#2a3f5f", grid: "#EBF0F8", scene: "white", sceneGrid: "#DFE8F3",
            slider: "#F8F8F8", sliderActive: "#DBDDE0"},
    dark: {paper: "rgba(0,0,0,0)", plot: "rgba(0,0,0,0)", font: "#d5d9e0", grid: "#39404b", scene: "rgba(0,0,0,0)",
           sceneGrid: "#4a525e", slider: "#3a3f47", sliderActive: "#6b7280"}
  };

  function mode() {
    return document.documentElement.dataset.theme === "dark" ? "dark" : "light";
  }

  function restyleInk(gd, dark) {
    var idx = [], colours = [];
    (gd.data || []).forEach(function (tr, i) {
      var c = tr.marker && tr.marker.color;
      if (tr._chartlibInk || c === INK || c === LIGHT_INK) {
        tr._chartlibInk = true;
        idx.push(i);
        colours.push(dark ? LIGHT_INK : INK);
      }
    });
    if (idx.length) { window.Plotly.restyle(gd, {"marker.color": colours}, idx); }
  }

  function apply(gd) {
    var m = mode();
    if (!gd.layout || gd._chartlibMode === m) { return; }
    var first = gd._chartlibMode === undefined;
    gd._chartlibMode = m;
    if (first && m === "light") { return; }   // drawn in the light look already
    var look = LOOKS[m], update = {paper_bgcolor: look.paper, plot_bgcolor: look.plot, "font.color": look.font};
    Object.keys(gd.layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        update[key + ".gridcolor"] = look.grid;
        update[key + ".zerolinecolor"] = look.grid;
        update[key + ".linecolor"] = look.grid;
      } else if (/^scene\d*$/.test(key)) {
        ["xaxis", "yaxis", "zaxis"].forEach(function (a) {
          update[key + "." + a + ".backgroundcolor"] = look.scene;
          update[key + "." + a + ".gridcolor"] = look.sceneGrid;
          update[key + "." + a + ".zerolinecolor"] = look.sceneGrid;
          update[key + "." + a + ".linecolor"] = look.sceneGrid;
        });
      }
    });
    (gd.layout.sliders || []).forEach(function (s, i) {
      update["sliders[" + i + "].bgcolor"] = look.slider;
      update["sliders[" + i + "].activebgcolor"] = look.sliderActive;
    });
    window.Plotly.relayout(gd, update);
    restyleInk(gd, m === "dark");
  }

  function applyAll() {
    if (!window.Plotly) { return; }
    document.querySelectorAll(".plotly-graph-div").forEach(apply);
  }

  new MutationObserver(applyAll).observe(document.documentElement, {attributes: true, attributeFilter: ["data-theme"]});
  if (document.readyState === "complete") { applyAll(); } else { window.addEventListener("load", applyAll); }
})();
