;; One AdamW update, 4 lanes at a time (wasm SIMD, f32), in place in the imported memory
;; (tfjs-backend-wasm's heap). Pointer arguments are byte offsets; n elements, of which the
;; first floor(n / 4) * 4 are done here and the caller does the rest.
;;
;;   g' = k g;  m' = b1 m + (1 - b1) g';  v' = b2 v + (1 - b2) g'^2
;;   p' = p - lr (m' c1) / (sqrt(v' c2) + eps) - lr wd p
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "adamw")
    (param $p i32) (param $g i32) (param $m i32) (param $v i32)
    (param $np i32) (param $nm i32) (param $nv i32) (param $n i32)
    (param $k f32) (param $lr f32) (param $b1 f32) (param $b2 f32) (param $eps f32)
    (param $wd f32) (param $c1 f32) (param $c2 f32)
    (local $i i32) (local $end i32)
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
        (local.set $gv (f32x4.mul (local.get $kv) (v128.load (i32.add (local.get $g) (local.get $i)))))
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
        (br $next)))))
