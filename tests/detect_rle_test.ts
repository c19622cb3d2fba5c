import assert from "node:assert/strict";
import {
  boxIou,
  compressRle,
  countsFromString,
  countsToString,
  decodeMask,
  encodeMask,
  mergeRles,
  polygonsToMask,
  rleArea,
  rleIou,
  rleToBbox,
  segmentationToRle,
  toUncompressed,
} from "../lib/detect/mod.ts";

/** Row-major bitmap from rows of "0"/"1" strings. */
function bitmap(rows: string[]): Uint8Array {
  return new Uint8Array(rows.join("").split("").map(Number));
}

Deno.test("encodeMask() runs column-major, starting with zeros", () => {
  // 3x3, column-major order: col0 = 0,1,1  col1 = 1,0,0  col2 = 0,0,1
  const m = bitmap(["010", "100", "101"]);
  const r = encodeMask(m, 3, 3);
  assert.deepEqual(r.size, [3, 3]);
  assert.deepEqual(r.counts, [1, 3, 4, 1]);
  assert.deepEqual(decodeMask(r), m);
  // a mask starting with a 1 has an empty first run
  assert.deepEqual(encodeMask(new Uint8Array([1, 0, 1, 0]), 2, 2).counts, [0, 2, 2]);
  assert.deepEqual(encodeMask(new Uint8Array(4), 2, 2).counts, [4]);
});

Deno.test("countsToString() matches hand-computed COCO strings", () => {
  // [3, 5, 2, 10, 1]: "3", "5", "2"; then 10-5 = 5 -> "5"; 1-2 = -1 -> 0x1f with the
  // sign bit and no continuation -> chr(48 + 31) = "O".
  assert.equal(countsToString([3, 5, 2, 10, 1]), "3525O");
  // 100 = 0b11_00100: low group 4 | 0x20 (more) -> "T", then 3 -> "3".
  assert.equal(countsToString([100]), "T3");
  assert.equal(countsToString([0, 100]), "0T3");
  // 37 -> 5|0x20 "U", 1 "1"; 1000 -> 8|0x20 "X", 31|0x20 "o" (31 has the sign bit, so a
  // zero group follows), "0"; index 2 is not delta-coded: 563 -> 19|0x20 "c", 17|0x20 "a", "0".
  assert.equal(countsToString([37, 1000, 563]), "U1Xo0ca0");
  for (const s of ["3525O", "T3", "0T3", "U1Xo0ca0"]) {
    assert.equal(countsToString(countsFromString(s)), s);
  }
  assert.deepEqual(countsFromString("3525O"), [3, 5, 2, 10, 1]);
  assert.deepEqual(countsFromString("U1Xo0ca0"), [37, 1000, 563]);
});

Deno.test("countsToString() round-trips large and negative deltas", () => {
  const counts = [0, 2 ** 28, 5, 3, 2 ** 30, 1, 7, 123456789, 0, 1];
  assert.deepEqual(countsFromString(countsToString(counts)), counts);
});

Deno.test("compressRle() / toUncompressed() round-trip a random mask", () => {
  const h = 17, w = 23;
  const m = new Uint8Array(h * w);
  let s = 12345;
  for (let i = 0; i < m.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    m[i] = (s >>> 16) % 3 === 0 ? 1 : 0;
  }
  const rle = encodeMask(m, h, w);
  const c = compressRle(rle);
  assert.equal(typeof c.counts, "string");
  assert.deepEqual(toUncompressed(c), rle);
  assert.deepEqual(decodeMask(c), m);
  assert.equal(rleArea(c), m.reduce((a, b) => a + b, 0));
});

Deno.test("toUncompressed() rejects counts that do not cover the image", () => {
  assert.throws(() => toUncompressed({ size: [2, 2], counts: [1, 2] }), /sum to 3, expected/);
  assert.throws(() => countsFromString("T"), /ends inside a count/);
});

Deno.test("rleToBbox() gives the tight box, full height for runs across columns", () => {
  const m = bitmap(["00000", "00110", "00100", "00000"]);
  assert.deepEqual(rleToBbox(encodeMask(m, 4, 5)), [2, 1, 2, 2]);
  assert.deepEqual(rleToBbox(encodeMask(new Uint8Array(6), 2, 3)), [0, 0, 0, 0]);
  // one run from the bottom of column 0 to the top of column 1
  const m2 = bitmap(["01", "11"]);
  assert.deepEqual(rleToBbox(encodeMask(m2, 2, 2)), [0, 0, 2, 2]);
});

Deno.test("polygonsToMask() samples pixel centres", () => {
  // the square [1, 3] x [1, 3] covers the centres of pixels 1..2 on both axes
  const sq = polygonsToMask([[1, 1, 3, 1, 3, 3, 1, 3]], 5, 5);
  assert.deepEqual(sq, bitmap(["00000", "01100", "01100", "00000", "00000"]));
  // a right triangle (0,0), (4,0), (0,4): centre (x+.5, y+.5) inside when x + y + 1 < 4
  const tri = polygonsToMask([[0, 0, 4, 0, 0, 4]], 4, 4);
  assert.deepEqual(tri, bitmap(["1110", "1100", "1000", "0000"]));
  // two polygons are a union
  const two = polygonsToMask([[0, 0, 1, 0, 1, 1, 0, 1], [3, 3, 4, 3, 4, 4, 3, 4]], 4, 4);
  assert.deepEqual(two, bitmap(["1000", "0000", "0000", "0001"]));
  // the whole image, clipped
  assert.equal(rleArea(segmentationToRle([[-5, -5, 50, -5, 50, 50, -5, 50]], 6, 7)), 42);
});

Deno.test("rleIou() and boxIou() follow COCO's crowd rule", () => {
  const a = encodeMask(bitmap(["1100", "1100", "1100", "1100"]), 4, 4); // 8 px
  const b = encodeMask(bitmap(["1110", "1110", "1110", "1110"]), 4, 4); // 12 px
  assert.equal(rleIou(a, b), 8 / 12);
  // crowd: intersection over the detection's area
  assert.equal(rleIou(b, a, true), 8 / 12);
  assert.equal(rleIou(a, b, true), 1);
  assert.equal(boxIou([0, 0, 2, 4], [0, 0, 3, 4]), 8 / 12);
  assert.equal(boxIou([10, 10, 20, 20], [0, 0, 100, 100], true), 1);
  assert.equal(boxIou([0, 0, 2, 2], [2, 0, 2, 2]), 0);
  assert.throws(() => rleIou(a, encodeMask(new Uint8Array(9), 3, 3)), /must be in image pixels/);
});

Deno.test("mergeRles() unions and intersects", () => {
  const a = encodeMask(bitmap(["10", "00"]), 2, 2);
  const b = encodeMask(bitmap(["01", "01"]), 2, 2);
  assert.deepEqual(decodeMask(mergeRles([a, b])), bitmap(["11", "01"]));
  assert.deepEqual(decodeMask(mergeRles([a, b], true)), bitmap(["00", "00"]));
});
