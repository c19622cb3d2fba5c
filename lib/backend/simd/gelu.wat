;; Exact GELU and its derivative, 4 lanes at a time (wasm SIMD, f32).
;;
;;   y = x * Phi(x)            Phi(x) = (1 + erf(x / sqrt 2)) / 2
;;   d = Phi(x) + x * phi(x)   phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
;;
;; erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, as tfjs's own Erf kernel), whose
;; exp(-a^2) with a = |x| / sqrt 2 is also exp(-x^2 / 2): one exponential serves both.
;; exp(-z), z >= 0: z = k ln2 + r, r in [0, ln2); e^-r by Taylor to degree 9; 2^-k built in the
;; exponent bits. z is clamped to 87 (e^-87 ~ 1.6e-38, the smallest normal f32).
;;
;; (func gelu (x y d n)): byte offsets of x (input), y and d (outputs) in the imported memory
;; (tfjs-backend-wasm's own heap, so tensors are read and written in place); it processes the
;; first floor(n / 4) * 4 elements and the caller does the remaining 0-3.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "gelu") (param $x i32) (param $y i32) (param $d i32) (param $n i32)
    (local $i i32) (local $end i32)
    (local $v v128) (local $a v128) (local $t v128) (local $z v128) (local $k v128)
    (local $r v128) (local $p v128) (local $g v128) (local $e v128) (local $cdf v128)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $v (v128.load (i32.add (local.get $x) (local.get $i))))
        ;; a = |x| / sqrt 2; t = 1 / (1 + P a)
        (local.set $a (f32x4.mul (f32x4.abs (local.get $v)) (f32x4.splat (f32.const 0.70710678118654752))))
        (local.set $t (f32x4.div (f32x4.splat (f32.const 1))
          (f32x4.add (f32x4.splat (f32.const 1)) (f32x4.mul (f32x4.splat (f32.const 0.3275911)) (local.get $a)))))
        ;; g = exp(-z), z = a^2
        (local.set $z (f32x4.min (f32x4.mul (local.get $a) (local.get $a)) (f32x4.splat (f32.const 87))))
        (local.set $k (f32x4.floor (f32x4.mul (local.get $z) (f32x4.splat (f32.const 1.4426950408889634)))))
        (local.set $r (f32x4.sub (local.get $z) (f32x4.mul (local.get $k) (f32x4.splat (f32.const 0.6931471805599453)))))
        ;; e^-r = 1 - r(1 - r(1/2 - r(1/6 - ... r/9!)))
        (local.set $p (f32x4.splat (f32.const 2.7557319223985893e-06)))
        (local.set $p (f32x4.sub (f32x4.splat (f32.const 2.4801587301587302e-05)) (f32x4.mul (local.get $r) (local.get $p))))
        (local.set $p (f32x4.sub (f32x4.splat (f32.const 1.9841269841269841e-04)) (f32x4.mul (local.get $r) (local.get $p))))
        (local.set $p (f32x4.sub (f32x4.splat (f32.const 1.3888888888888889e-03)) (f32x4.mul (local.get $r) (local.get $p))))
        (local.set $p (f32x4.sub (f32x4.splat (f32.const 8.3333333333333333e-03)) (f32x4.mul (local.get $r) (local.get $p))))
        (local.set $p (f32x4.sub (f32x4.splat (f32.const 4.1666666666666667e-02)) (f32x4.mul (local.get $r) (local.get $p))))
        (local.set $p (f32x4.sub (f32x4.splat (f32.const 1.6666666666666667e-01)) (f32x4.mul (local.get $r) (local.get $p))))
        (local.set $p (f32x4.sub (f32x4.splat (f32.const 0.5)) (f32x4.mul (local.get $r) (local.get $p))))
        (local.set $p (f32x4.sub (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $r) (local.get $p))))
        (local.set $p (f32x4.sub (f32x4.splat (f32.const 1)) (f32x4.mul (local.get $r) (local.get $p))))
        ;; 2^-k: exponent bits (127 - k) << 23
        (local.set $g (f32x4.mul (local.get $p)
          (i32x4.shl (i32x4.sub (i32x4.splat (i32.const 127)) (i32x4.trunc_sat_f32x4_s (local.get $k))) (i32.const 23))))
        ;; e = erf(a) = 1 - t (A1 + t (A2 + t (A3 + t (A4 + t A5)))) g
        (local.set $e (f32x4.splat (f32.const 1.061405429)))
        (local.set $e (f32x4.add (f32x4.splat (f32.const -1.453152027)) (f32x4.mul (local.get $t) (local.get $e))))
        (local.set $e (f32x4.add (f32x4.splat (f32.const 1.421413741)) (f32x4.mul (local.get $t) (local.get $e))))
        (local.set $e (f32x4.add (f32x4.splat (f32.const -0.284496736)) (f32x4.mul (local.get $t) (local.get $e))))
        (local.set $e (f32x4.add (f32x4.splat (f32.const 0.254829592)) (f32x4.mul (local.get $t) (local.get $e))))
        (local.set $e (f32x4.sub (f32x4.splat (f32.const 1))
          (f32x4.mul (f32x4.mul (local.get $t) (local.get $e)) (local.get $g))))
        ;; erf(x / sqrt 2) = sign(x) e; Phi = (1 + erf) / 2
        (local.set $e (v128.bitselect (f32x4.neg (local.get $e)) (local.get $e)
          (f32x4.lt (local.get $v) (f32x4.splat (f32.const 0)))))
        (local.set $cdf (f32x4.mul (f32x4.splat (f32.const 0.5)) (f32x4.add (f32x4.splat (f32.const 1)) (local.get $e))))
        (v128.store (i32.add (local.get $y) (local.get $i)) (f32x4.mul (local.get $v) (local.get $cdf)))
        (v128.store (i32.add (local.get $d) (local.get $i))
          (f32x4.add (local.get $cdf)
            (f32x4.mul (f32x4.mul (local.get $v) (f32x4.splat (f32.const 0.3989422804014327))) (local.get $g))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))))
