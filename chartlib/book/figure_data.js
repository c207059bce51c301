// Unpacks the book's figure arrays before plotly.js draws them.  chartlib.report.figures.pack writes
// every long numeric array of a figure (point clouds and the slider's frames) as 16-bit steps between
// its minimum and maximum, {"q16": base64 of little-endian uint16, "lo": minimum, "step": step}:
// about 2.7 characters a number instead of 6.  Loaded after plotly.min.js, before any figure.
(function () {
  "use strict";
  var P = window.Plotly;
  if (!P || P._chartlibUnpacks) { return; }

  function unpack(spec) {
    var raw = window.atob(spec.q16), n = raw.length >> 1, out = new Array(n);
    for (var i = 0; i < n; i++) {
      out[i] = spec.lo + (raw.charCodeAt(2 * i) | (raw.charCodeAt(2 * i + 1) << 8)) * spec.step;
    }
    return out;
  }

  function walk(v) {
    if (Array.isArray(v)) {
      for (var i = 0; i < v.length; i++) { v[i] = walk(v[i]); }
      return v;
    }
    if (v && typeof v === "object") {
      if (typeof v.q16 === "string" && typeof v.lo === "number" && typeof v.step === "number") { return unpack(v); }
      Object.keys(v).forEach(function (k) { v[k] = walk(v[k]); });
    }
    return v;
  }

  var newPlot = P.newPlot;
  P.newPlot = function (gd, data, layout, config) {
    return newPlot.call(this, gd, walk(data), walk(layout), config);
  };
  P._chartlibUnpacks = true;
})();
