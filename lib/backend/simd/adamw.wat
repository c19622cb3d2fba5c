;; One AdamW update, 4 lanes at a time (wasm SIMD, f32), in the imported memory (tfjs-backend-
;; wasm's heap). Pointer arguments are byte offsets; n elements, of which the first
;; floor(n / 4) * 4 are done here and the caller does the rest. The outputs may be the inputs
;; (np = p, nm = m, nv = v: an update in place); each lane is read before it is written.
;;
;;   g' = k g;  m' = b1 m + (1 - b1) g';  v' = b2 v + (1 - b2) g'^2
;;   p' = p - lr (m' c1) / (sqrt(v' c2) + eps) - lr wd p
;;
;; `adamw` returns the sum of the squares of the unscaled g over those elements, accumulated in
;; f64 (the gradient norm of an unclipped step comes free with the update); `sumsq` is that sum
;; alone (the norm a clipped step needs before it can update).
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "adamw")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32)
    (param $np i32) (param $nm i32) (param $nv i32) (param $n i32)
    (param $k f32) (param $lr f32) (param $b1 f32) (param $b2 f32) (param $eps f32)
    (param $wd f32) (param $c1 f32) (param $c2 f32) (result f64)
    (local $i i32) (local $end i32) (local $raw v128) (local $sq v128) (local $acc v128)
    (local $gv v128) (local $mv v128) (local $vv v128) (local $pv v128)
    (local $kv v128) (local $b1v v128) (local $b1c v128) (local $b2v v128) (local $b2c v128)
    (local $lrv v128) (local $epsv v128) (local $decay v128) (local $c1v v128) (local $c2v v128)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $kv (f32x4.splat (local.get $k)))
    (local.set $b1v (f32x4.splat (local.get $b1)))
    (local.set $b1c (f32x4.splat (f32.sub (f32.const 1) (local.get $b1))))
    (local.set $b2v (f32x4.splat (local.get $b2)))
    (local.set $b2c (f32x4.splat (f32.sub (f32.const 1) (local.get $b2))))
    (local.set $lrv (f32x4.splat (local.get $lr)))
    (local.set $epsv (f32x4.splat (local.get $eps)))
    (local.set $decay (f32x4.splat (f32.mul (local.get $lr) (local.get $wd))))
    (local.set $c1v (f32x4.splat (local.get $c1)))
    (local.set $c2v (f32x4.splat (local.get $c2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $raw (v128.load (i32.add (local.get $g) (local.get $i))))
        (local.set $sq (f32x4.mul (local.get $raw) (local.get $raw)))
        (local.set $acc (f64x2.add (local.get $acc) (f64x2.add
          (f64x2.promote_low_f32x4 (local.get $sq))
          (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $sq) (local.get $sq))))))
        (local.set $gv (f32x4.mul (local.get $kv) (local.get $raw)))
        (local.set $mv (f32x4.add
          (f32x4.mul (local.get $b1v) (v128.load (i32.add (local.get $m) (local.get $i))))
          (f32x4.mul (local.get $b1c) (local.get $gv))))
        (local.set $vv (f32x4.add
          (f32x4.mul (local.get $b2v) (v128.load (i32.add (local.get $v) (local.get $i))))
          (f32x4.mul (local.get $b2c) (f32x4.mul (local.get $gv) (local.get $gv)))))
        (v128.store (i32.add (local.get $nm) (local.get $i)) (local.get $mv))
        (v128.store (i32.add (local.get $nv) (local.get $i)) (local.get $vv))
        (local.set $pv (v128.load (i32.add (local.get $p) (local.get $i))))
        (v128.store (i32.add (local.get $np) (local.get $i))
          (f32x4.sub
            (f32x4.sub (local.get $pv)
              (f32x4.div (f32x4.mul (local.get $lrv) (f32x4.mul (local.get $mv) (local.get $c1v)))
                (f32x4.add (f32x4.sqrt (f32x4.mul (local.get $vv) (local.get $c2v))) (local.get $epsv))))
            (f32x4.mul (local.get $decay) (local.get $pv))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))
  (func (export "sumsq") (param $x i32) (param $n i32) (result f64)
    (local $i i32) (local $end i32) (local $sq v128) (local $acc v128)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $sq (v128.load (i32.add (local.get $x) (local.get $i))))
        (local.set $sq (f32x4.mul (local.get $sq) (local.get $sq)))
        (local.set $acc (f64x2.add (local.get $acc) (f64x2.add
          (f64x2.promote_low_f32x4 (local.get $sq))
          (f64x2.promote_low_f32x4
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $sq) (local.get $sq))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc)))))
