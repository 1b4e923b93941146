// Plots: the PNG encoder (structure, CRCs, pixels after inflating), exact connectivity binning,
// random vs small-world pictures that differ measurably, and well-formed, labelled SVG charts.
import assert from "node:assert/strict";
import { crc32, encodePng } from "../lib/plot/png.ts";
import {
  connectivityDensity,
  connectivityImage,
  connectivityPng,
  connectivitySvg,
} from "../lib/plot/connectivity.ts";
import { lineChart } from "../lib/plot/line_chart.ts";
import { escapeXml, niceTicks } from "../lib/plot/svg.ts";
import { decodePng, frame, numbers } from "./_plot_reading.ts";
import { Generator } from "../lib/random.ts";

Deno.test("crc32 matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("encodePng writes a valid PNG whose pixels decode back", () => {
  const rgba = new Uint8Array([255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0, 10, 20, 30, 40]);
  const png = encodePng({ width: 2, height: 2, channels: 4, pixels: rgba });
  const back = decodePng(png);
  assert.deepEqual([back.width, back.height, back.channels], [2, 2, 4]);
  assert.deepEqual(back.pixels, rgba);
  const rgb = new Uint8Array(3 * 5 * 3).map((_, i) => i * 7);
  assert.deepEqual(
    decodePng(encodePng({ width: 5, height: 3, channels: 3, pixels: rgb })).pixels,
    rgb,
  );
  assert.throws(
    () => encodePng({ width: 2, height: 2, channels: 3, pixels: new Uint8Array(11) }),
    /pixels must be a Uint8Array of 12 bytes/,
  );
  assert.throws(
    () => encodePng({ width: 0, height: 2, channels: 3, pixels: new Uint8Array(0) }),
    RangeError,
  );
});

Deno.test("connectivityDensity checks its bin counts", () => {
  // NaN, {} or null bins gave an empty density, 1.5 gave 3 cells.
  const one = new Int32Array([0]);
  for (const binsX of [NaN, 0, 1.5]) {
    assert.throws(
      () => connectivityDensity(one, one, 4, 4, { binsX, binsY: 2 } as never),
      (e: Error) => e instanceof RangeError && /binsX must be a positive integer/.test(e.message),
    );
  }
  for (const binsX of [null, "2"]) {
    assert.throws(
      () => connectivityDensity(one, one, 4, 4, { binsX, binsY: 2 } as never),
      (e: Error) =>
        e instanceof TypeError && /connectivityDensity\(\) binsX must be a number/.test(e.message),
    );
  }
  assert.throws(() => connectivityDensity(one, one, 4, 4, null as never), TypeError);
});

Deno.test("connectivityDensity bins connections exactly", () => {
  // 4 × 6 layer in 2 × 3 bins: each bin is 2 rows × 2 columns = 4 possible connections.
  const rows = new Int32Array([0, 1, 1, 3, 2, 3]);
  const cols = new Int32Array([0, 0, 1, 5, 2, 4]);
  const d = connectivityDensity(rows, cols, 4, 6, { binsX: 3, binsY: 2 });
  assert.deepEqual([d.binsX, d.binsY, d.nnz], [3, 2, 6]);
  assert.deepEqual(Array.from(d.density), [0.75, 0, 0, 0, 0.25, 0.5]);
  assert.equal(d.maxDensity, 0.75);
  // Uneven bins: 5 rows in 2 bins hold 3 and 2 rows.
  const full = connectivityDensity(
    new Int32Array([0, 1, 2, 3, 4]),
    new Int32Array([0, 0, 0, 0, 0]),
    5,
    1,
    { binsX: 1, binsY: 2 },
  );
  assert.deepEqual(Array.from(full.density), [1, 1]);
  // More bins than features: one bin per feature.
  const tiny = connectivityDensity(new Int32Array([1]), new Int32Array([0]), 2, 2, {
    binsX: 100,
    binsY: 100,
  });
  assert.deepEqual([tiny.binsX, tiny.binsY, ...tiny.density], [2, 2, 0, 0, 1, 0]);
});

Deno.test("connections outside the layer are range errors naming the entry", () => {
  const rows = new Int32Array([0, 4]);
  const cols = new Int32Array([0, 1]);
  assert.throws(
    () => connectivityDensity(rows, cols, 4, 6, { binsX: 2, binsY: 2 }),
    /rows\[1\] = 4 is outside \[0, 4\)/,
  );
  assert.throws(
    () => connectivityImage(new Int32Array([0]), new Int32Array([-1]), 4, 6),
    /cols\[0\] = -1 is outside \[0, 6\)/,
  );
  assert.throws(
    () => connectivityImage(new Int32Array(2), new Int32Array(3), 4, 6),
    /same length/,
  );
  assert.throws(() => connectivityImage(rows, cols, 0, 6), /nOut must be a positive integer/);
  assert.throws(() => connectivityImage(rows, cols, 5, 6, { width: 0 }), /width must be/);
});

/** `nnz` random distinct-ish connections, or a banded (small-world-like) pattern. */
function pattern(kind: "random" | "banded", nOut: number, nIn: number, nnz: number) {
  const g = new Generator(kind === "random" ? 1 : 2);
  const rows = new Int32Array(nnz);
  const cols = new Int32Array(nnz);
  const half = Math.round(nnz / nOut);
  for (let k = 0; k < nnz; k++) {
    const r = g.int(nOut);
    rows[k] = r;
    if (kind === "random" || g.uniform() < 0.05) {
      cols[k] = g.int(nIn);
    } else {
      const c = Math.floor(((r + 0.5) * nIn) / nOut) + g.int(2 * half + 1) - half;
      cols[k] = Math.min(nIn - 1, Math.max(0, c));
    }
  }
  return { rows, cols };
}

/** Mean density of the bins on the diagonal band over the mean of the rest. */
function bandContrast(density: Float64Array, binsX: number, binsY: number): number {
  let on = 0;
  let onCount = 0;
  let off = 0;
  let offCount = 0;
  for (let y = 0; y < binsY; y++) {
    for (let x = 0; x < binsX; x++) {
      const near = Math.abs((x + 0.5) / binsX - (y + 0.5) / binsY) < 0.05;
      if (near) {
        on += density[y * binsX + x];
        onCount++;
      } else {
        off += density[y * binsX + x];
        offCount++;
      }
    }
  }
  return on / onCount / (off / offCount);
}

Deno.test("random and small-world connectivity look different: the band", () => {
  const nOut = 2000;
  const nIn = 784;
  const nnz = 156800; // 90 % sparsity
  const random = pattern("random", nOut, nIn, nnz);
  const banded = pattern("banded", nOut, nIn, nnz);
  const a = connectivityImage(random.rows, random.cols, nOut, nIn);
  const b = connectivityImage(banded.rows, banded.cols, nOut, nIn);
  // Default size: 512 px along the longer (output) axis, proportional across.
  assert.deepEqual([a.width, a.height], [201, 512]);
  const ca = bandContrast(a.density.density, a.density.binsX, a.density.binsY);
  const cb = bandContrast(b.density.density, b.density.binsX, b.density.binsY);
  assert.ok(ca > 0.8 && ca < 1.25, `random: band/rest density ${ca}`);
  assert.ok(cb > 5, `small-world: band/rest density ${cb}`);
  // Bins hold ~16 connections on average, so a random layer is not speckle: its bins agree.
  const mean = nnz / (nOut * nIn);
  const spread = Math.max(...a.density.density) / mean;
  assert.ok(spread < 3, `random bins vary by ${spread}x`);
  // Pixels: the banded picture is mostly white, the random one almost never.
  const white = (img: typeof a) => {
    let n = 0;
    for (let i = 0; i < img.pixels.length; i += 3) {
      if (img.pixels[i] === 255 && img.pixels[i + 1] === 255 && img.pixels[i + 2] === 255) n++;
    }
    return n / (img.width * img.height);
  };
  assert.ok(white(a) < 0.01, `random white fraction ${white(a)}`);
  assert.ok(white(b) > 0.3, `banded white fraction ${white(b)}`);
});

Deno.test("connectivityPng frames the heat map; connectivitySvg embeds it with axes", () => {
  const { rows, cols } = pattern("banded", 300, 200, 6000);
  const png = decodePng(connectivityPng(rows, cols, 300, 200, { width: 100, height: 150 }));
  assert.deepEqual([png.width, png.height, png.channels], [102, 152, 3]);
  assert.deepEqual(Array.from(png.pixels.subarray(0, 3)), [128, 128, 128]);
  const svg = connectivitySvg(rows, cols, 300, 200, { title: "small-world <band>" });
  assert.ok(svg.startsWith("<svg") && svg.trimEnd().endsWith("</svg>"));
  assert.match(svg, /small-world &lt;band&gt;/);
  assert.match(svg, /input index/);
  assert.match(svg, /output index/);
  assert.match(svg, /300 outputs × 200 inputs, 6000 connections/);
  assert.match(svg, /connected/);
  const embedded = svg.match(/href="data:image\/png;base64,([^"]+)"/);
  assert.ok(embedded);
  const bytes = Uint8Array.from(atob(embedded[1]), (c) => c.charCodeAt(0));
  assert.equal(decodePng(bytes).width, connectivityImage(rows, cols, 300, 200).width);
  assertBalanced(svg);
});

/**
 * A cheap well-formedness test: every element opened is closed, in order; only characters that
 * XML allows; every coordinate and size a finite number.
 */
function assertBalanced(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else stack.push(name);
  }
  assert.deepEqual(stack, []);
  assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
  const notXml = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
  assert.doesNotMatch(svg, notXml, "a character that XML 1.0 forbids");
  for (const [, name, value] of svg.matchAll(/ (x|y|x1|x2|y1|y2|cx|cy|r|width|height)="(.*?)"/g)) {
    assert.ok(Number.isFinite(Number(value)), `${name}="${value}"`);
  }
  for (const [, points] of svg.matchAll(/ points="(.*?)"/g)) {
    for (const v of points.split(/[ ,]/)) {
      assert.ok(Number.isFinite(Number(v)), `points="${points}"`);
    }
  }
}

/** The text of the tick labels (`<text>`s that are numbers), in document order. */
function tickLabels(svg: string): string[] {
  return [...svg.matchAll(/>(-?[0-9.e]+)<\/text>/g)].map((m) => m[1]);
}

Deno.test("lineChart draws titled, labelled axes, a legend and one line per series", () => {
  const svg = lineChart({
    title: "Loss & accuracy",
    xLabel: "epoch",
    yLabel: "loss",
    series: [
      { name: "train <sparse>", values: [0.9, 0.5, 0.3, 0.2] },
      { name: "test", values: [0.8, 0.6, 0.5, 0.45], color: "#000000" },
    ],
  });
  assertBalanced(svg);
  assert.match(svg, /Loss &amp; accuracy/);
  assert.match(svg, />epoch</);
  assert.match(svg, />loss</);
  assert.match(svg, /train &lt;sparse&gt;/);
  assert.equal(svg.match(/<polyline/g)?.length, 2);
  assert.match(svg, /stroke="#000000"/);
  // Ticks: epochs 1..4 on x; y in steps of 0.2 over the data (0.2 to 0.9) plus 5 % margins
  // (0.165 to 0.935), widened to 0 and 1.0: the lowest point is not drawn on the frame.
  const labels = [...svg.matchAll(/>([0-9.]+)<\/text>/g)].map((m) => m[1]);
  assert.deepEqual(labels, ["0", "0.2", "0.4", "0.6", "0.8", "1.0", "1", "2", "3", "4"]);
});

Deno.test("lineChart leaves gaps at missing values and handles flat or single-point series", () => {
  const gap = lineChart({ series: [{ name: "a", values: [1, 2, NaN, 4, 5] }] });
  assert.equal(gap.match(/<polyline/g)?.length, 2);
  assertBalanced(gap);
  // null (a value not measured, as a history's test accuracy) is a gap too, drawn as NaN is.
  const nullGap = lineChart({
    series: [{ name: "a", values: [1, 2, null as unknown as number, 4, 5] }],
  });
  assert.equal(nullGap, gap);
  const flat = lineChart({ series: [{ name: "a", values: [98.16, 98.16, 98.16] }] });
  assertBalanced(flat);
  const single = lineChart({ series: [{ name: "a", values: [0.5] }] });
  assertBalanced(single);
  assert.equal(single.match(/<circle/g)?.length, 1);
  const fixed = lineChart({ series: [{ name: "acc", values: [0.9, 0.95] }], yMin: 0, yMax: 1 });
  assertBalanced(fixed);
  assert.throws(() => lineChart({ series: [] }), /non-empty array/);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => lineChart({ series: [{ name: "a" } as any] }),
    /needs a name \(string\) and values/,
  );
  assert.throws(
    () => lineChart({ series: [{ name: "a", values: [1, 2, 3] }], x: [1, 2] }),
    /x has 2 values, but a series has 3/,
  );
});

Deno.test("lineChart draws values near Number.MAX_VALUE on a finite axis", () => {
  // The y span or a tick step overflowed to Infinity: cy="NaN", or an endless tick loop
  // ("Invalid array length").
  const max = Number.MAX_VALUE;
  for (const values of [[1.7e308, 0], [0, max], [-1e308, 1e308], [-max, max], [max, max]]) {
    const svg = lineChart({ series: [{ name: "v", values }] });
    assertBalanced(svg);
    const { top, bottom } = frame(svg);
    const cy = numbers(svg, "circle", "cy");
    assert.equal(cy.length, 2);
    for (const y of cy) assert.ok(y >= top && y <= bottom, `${values}: cy ${y}`);
    if (values[0] !== values[1]) assert.ok(cy[0] !== cy[1], `${values}: ${cy}`);
    // Ticks a step apart read differently (not 1.7e308 twice).
    const labels = tickLabels(svg);
    assert.equal(new Set(labels).size, labels.length, `${labels}`);
  }
  // X values as large, too.
  const wide = lineChart({ x: [-1e308, 0, 1.7e308], series: [{ name: "v", values: [1, 2, 3] }] });
  assertBalanced(wide);
  assert.deepEqual(tickLabels(wide).slice(-3), ["-1.0e308", "0", "1.0e308"]);
  // Fixed ends beyond that would put every point at NaN.
  assert.throws(
    () => lineChart({ series: [{ name: "v", values: [1] }], yMax: Infinity }),
    /lineChart\(\) yMax must be a finite number, got Infinity/,
  );
});

Deno.test("lineChart leaves a gap at a NaN or infinite x, as at a NaN y", () => {
  const svg = lineChart({
    x: [1, 2, NaN, 4, 5, Infinity, 7, -Infinity, 9],
    series: [{ name: "v", values: [1, 2, 3, 4, 5, 6, 7, 8, 9] }],
  });
  assertBalanced(svg);
  assert.equal(numbers(svg, "circle", "cx").length, 6);
  assert.equal(svg.match(/<polyline/g)?.length, 2); // 1-2 and 4-5; 7 and 9 stand alone
});

Deno.test("escapeXml replaces characters that XML forbids", () => {
  const bad = "a\u0000b\u0008c\u000bd\u000ce\u001ff\ud800g\udc00h\ufffei\uffffj";
  assert.equal(escapeXml(bad), "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\ufffdh\ufffdi\ufffdj");
  // Tabs, newlines, non-ASCII text and surrogate pairs stay.
  assert.equal(escapeXml("\t\n\r × 😀 <&>"), "\t\n\r × 😀 &lt;&amp;&gt;");
  const svg = lineChart({
    title: "run\u001b[0m",
    xLabel: "x\u0001",
    yLabel: "y\ud800",
    series: [{ name: "n\u0000", values: [1, 2] }],
  });
  assertBalanced(svg);
  assert.match(svg, />run\ufffd\[0m</);
  const one = new Int32Array([0]);
  assertBalanced(connectivitySvg(one, one, 1, 1, { title: "t\u0002" }));
});

Deno.test("a single epoch or a constant series is drawn inside the frame, not on it", () => {
  // One epoch (what --plot writes first) gave the x range [1, 1]: markers on the left frame.
  const one = lineChart({
    series: [{ name: "train", values: [0.5] }, { name: "test", values: [0.7] }],
  });
  assertBalanced(one);
  const { left, right } = frame(one);
  for (const cx of numbers(one, "circle", "cx")) {
    assert.ok(cx > left && cx < right, `cx ${cx} in (${left}, ${right})`);
    assert.ok(Math.abs(cx - (left + right) / 2) < 1, `cx ${cx} is centred`);
  }
  assert.deepEqual(tickLabels(one).slice(-3), ["0", "1", "2"]);
  // Two epochs: whole-epoch ticks, not 1.5.
  const two = lineChart({ series: [{ name: "a", values: [0.5, 0.4] }] });
  assert.deepEqual(tickLabels(two).slice(-2), ["1", "2"]);
  // A constant series (0.5 fell on a tick and became the bottom of the axis).
  for (const v of [0.5, 0, 98.16, -3, 1e20]) {
    const flat = lineChart({ series: [{ name: "a", values: [v, v, v] }] });
    assertBalanced(flat);
    const { top, bottom } = frame(flat);
    for (const cy of numbers(flat, "circle", "cy")) {
      assert.ok(cy > top + 10 && cy < bottom - 10, `${v}: cy ${cy} in (${top}, ${bottom})`);
    }
    const labels = tickLabels(flat);
    assert.equal(new Set(labels).size, labels.length, `${labels}`);
  }
});

Deno.test("niceTicks picks 1-2-5 steps", () => {
  assert.deepEqual(niceTicks(0, 1, 5), {
    ticks: [0, 0.2, 0.4, 0.6, 0.8, 1],
    step: 0.2,
  });
  assert.deepEqual(niceTicks(0, 2000, 4).ticks, [0, 500, 1000, 1500, 2000]);
  assert.deepEqual(niceTicks(-0.05, 0.05, 2).ticks, [-0.05, 0, 0.05]);
  assert.ok(Object.is(niceTicks(-1, 1, 2).ticks[1], 0), "0, not -0");
  // A flat range is widened around the value.
  const flat = niceTicks(3, 3);
  assert.ok(flat.ticks[0] < 3 && flat.ticks.at(-1)! > 3, `${flat.ticks}`);
});

Deno.test("values a few ulps apart are drawn as one value: the ticks end", () => {
  // The ticks of [0.9812, 0.9812 + 1 ulp] were i · 2e-17 from i ≈ 4.9e16, beyond 2^53, where
  // i++ no longer changes i: niceTicks, and so lineChart, never returned.
  const ticks = niceTicks(0.9812, 0.9812000000000001);
  assert.ok(ticks.ticks.length >= 2 && ticks.ticks.length <= 7, `${ticks.ticks}`);
  assert.ok(ticks.ticks[0] < 0.9812 && ticks.ticks.at(-1)! > 0.9812, `${ticks.ticks}`);
  for (const values of [[0.9812, 0.9812000000000001], [1e20, 1e20 + 16384]]) {
    const svg = lineChart({ series: [{ name: "a", values }] });
    assertBalanced(svg);
    const labels = tickLabels(svg);
    assert.equal(new Set(labels).size, labels.length, `${labels}`);
  }
  const xs = lineChart({ series: [{ name: "a", values: [1, 2] }], x: [1e17, 1e17 + 16] });
  assertBalanced(xs);
});

Deno.test("a legend name too long for the chart is cut, and the plot keeps a positive size", () => {
  // A 300-character name made the legend wider than the chart: a frame of width -1752 (an
  // invalid SVG) and every point left of the image.
  const name = "sparse 784-2000-10, seed 0, ".repeat(11);
  const svg = lineChart({ series: [{ name, values: [1, 2] }, { name: "test", values: [2, 1] }] });
  assertBalanced(svg);
  const { left, right } = frame(svg);
  assert.ok(right - left >= 200, `plot from ${left} to ${right}`);
  for (const cx of numbers(svg, "circle", "cx")) assert.ok(cx >= left && cx <= right, `cx ${cx}`);
  const legend = [...svg.matchAll(/dominant-baseline="middle">([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.ok(legend.includes("test"), `${legend}`);
  const cut = legend.find((l) => l.startsWith("sparse 784-2000-10"));
  assert.ok(cut !== undefined && cut.endsWith("…") && cut.length < name.length, cut);
  assert.ok(numbers(svg, "text", "x").every((x) => x < 720), "legend inside the image");
});

Deno.test("lineChart's width and height are finite numbers", () => {
  const series = [{ name: "a", values: [1, 2] }];
  // An infinite width wrote width="Infinity" and viewBox="0 0 Infinity 420".
  assert.throws(() => lineChart({ series, width: Infinity }), /Chart size must be finite/);
  assert.throws(() => lineChart({ series, height: -Infinity }), /at least 200 x 150/);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => lineChart({ series, width: "800" as any }), /width must be a number/);
  assertBalanced(lineChart({ series, width: 300.5 }));
});
