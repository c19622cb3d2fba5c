;; LayerNorm over rows of D floats (D a multiple of 4), forward and backward, 4 lanes at a time
;; (wasm SIMD, f32), in place in the imported memory (tfjs-backend-wasm's heap). Pointer
;; arguments are byte offsets.
;;
;; forward:  mean = sum(x) / D, rstd = 1 / sqrt(sum((x - mean)^2) / D + eps),
;;           y = (x - mean) rstd g + b
;; backward: xh = (x - mean) rstd, a = mean_j(g dy), c = mean_j(g dy xh),
;;           dx = rstd (g dy - a - xh c), dg = sum_rows(dy xh), db = sum_rows(dy)
(module
  (import "env" "memory" (memory 1 65536 shared))

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  (func (export "ln_fwd") (param $x i32) (param $y i32) (param $g i32) (param $b i32)
    (param $mean i32) (param $rstd i32) (param $rows i32) (param $d i32) (param $eps f32)
    (local $r i32) (local $j i32) (local $row i32) (local $bytes i32)
    (local $acc v128) (local $c v128) (local $mu f32) (local $rs f32) (local $muv v128) (local $rsv v128)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $r (i32.const 0))
    (block $rows_done
      (loop $rows_next
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.mul (local.get $r) (local.get $bytes)))
        ;; mean
        (local.set $acc (f32x4.splat (f32.const 0)))
        (local.set $j (i32.const 0))
        (block $d1 (loop $l1
          (br_if $d1 (i32.ge_u (local.get $j) (local.get $bytes)))
          (local.set $acc (f32x4.add (local.get $acc)
            (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $j))))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $l1)))
        (local.set $mu (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $d))))
        (local.set $muv (f32x4.splat (local.get $mu)))
        ;; variance
        (local.set $acc (f32x4.splat (f32.const 0)))
        (local.set $j (i32.const 0))
        (block $d2 (loop $l2
          (br_if $d2 (i32.ge_u (local.get $j) (local.get $bytes)))
          (local.set $c (f32x4.sub
            (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $j))))
            (local.get $muv)))
          (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $c) (local.get $c))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $l2)))
        (local.set $rs (f32.div (f32.const 1) (f32.sqrt (f32.add
          (f32.div (call $hsum (local.get $acc)) (f32.convert_i32_u (local.get $d)))
          (local.get $eps)))))
        (local.set $rsv (f32x4.splat (local.get $rs)))
        ;; y
        (local.set $j (i32.const 0))
        (block $d3 (loop $l3
          (br_if $d3 (i32.ge_u (local.get $j) (local.get $bytes)))
          (v128.store (i32.add (local.get $y) (i32.add (local.get $row) (local.get $j)))
            (f32x4.add
              (f32x4.mul
                (f32x4.mul
                  (f32x4.sub
                    (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $j))))
                    (local.get $muv))
                  (local.get $rsv))
                (v128.load (i32.add (local.get $g) (local.get $j))))
              (v128.load (i32.add (local.get $b) (local.get $j)))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $l3)))
        (f32.store (i32.add (local.get $mean) (i32.shl (local.get $r) (i32.const 2))) (local.get $mu))
        (f32.store (i32.add (local.get $rstd) (i32.shl (local.get $r) (i32.const 2))) (local.get $rs))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows_next))))

  (func (export "ln_bwd") (param $dy i32) (param $x i32) (param $g i32) (param $mean i32)
    (param $rstd i32) (param $dx i32) (param $dg i32) (param $db i32) (param $rows i32) (param $d i32)
    (local $r i32) (local $j i32) (local $row i32) (local $bytes i32)
    (local $muv v128) (local $rsv v128) (local $xh v128) (local $gd v128) (local $dyv v128)
    (local $accA v128) (local $accC v128) (local $av v128) (local $cv v128) (local $inv f32)
    (local.set $bytes (i32.shl (local.get $d) (i32.const 2)))
    (local.set $inv (f32.div (f32.const 1) (f32.convert_i32_u (local.get $d))))
    ;; dg = db = 0
    (local.set $j (i32.const 0))
    (block $z (loop $lz
      (br_if $z (i32.ge_u (local.get $j) (local.get $bytes)))
      (v128.store (i32.add (local.get $dg) (local.get $j)) (f32x4.splat (f32.const 0)))
      (v128.store (i32.add (local.get $db) (local.get $j)) (f32x4.splat (f32.const 0)))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $lz)))
    (local.set $r (i32.const 0))
    (block $rows_done
      (loop $rows_next
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $row (i32.mul (local.get $r) (local.get $bytes)))
        (local.set $muv (v128.load32_splat (i32.add (local.get $mean) (i32.shl (local.get $r) (i32.const 2)))))
        (local.set $rsv (v128.load32_splat (i32.add (local.get $rstd) (i32.shl (local.get $r) (i32.const 2)))))
        (local.set $accA (f32x4.splat (f32.const 0)))
        (local.set $accC (f32x4.splat (f32.const 0)))
        (local.set $j (i32.const 0))
        (block $d1 (loop $l1
          (br_if $d1 (i32.ge_u (local.get $j) (local.get $bytes)))
          (local.set $dyv (v128.load (i32.add (local.get $dy) (i32.add (local.get $row) (local.get $j)))))
          (local.set $xh (f32x4.mul (f32x4.sub
            (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $j))))
            (local.get $muv)) (local.get $rsv)))
          (local.set $gd (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $j))) (local.get $dyv)))
          (local.set $accA (f32x4.add (local.get $accA) (local.get $gd)))
          (local.set $accC (f32x4.add (local.get $accC) (f32x4.mul (local.get $gd) (local.get $xh))))
          (v128.store (i32.add (local.get $dg) (local.get $j))
            (f32x4.add (v128.load (i32.add (local.get $dg) (local.get $j)))
              (f32x4.mul (local.get $dyv) (local.get $xh))))
          (v128.store (i32.add (local.get $db) (local.get $j))
            (f32x4.add (v128.load (i32.add (local.get $db) (local.get $j))) (local.get $dyv)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $l1)))
        (local.set $av (f32x4.splat (f32.mul (call $hsum (local.get $accA)) (local.get $inv))))
        (local.set $cv (f32x4.splat (f32.mul (call $hsum (local.get $accC)) (local.get $inv))))
        (local.set $j (i32.const 0))
        (block $d2 (loop $l2
          (br_if $d2 (i32.ge_u (local.get $j) (local.get $bytes)))
          (local.set $xh (f32x4.mul (f32x4.sub
            (v128.load (i32.add (local.get $x) (i32.add (local.get $row) (local.get $j))))
            (local.get $muv)) (local.get $rsv)))
          (local.set $gd (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $j)))
            (v128.load (i32.add (local.get $dy) (i32.add (local.get $row) (local.get $j))))))
          (v128.store (i32.add (local.get $dx) (i32.add (local.get $row) (local.get $j)))
            (f32x4.mul (local.get $rsv)
              (f32x4.sub (f32x4.sub (local.get $gd) (local.get $av))
                (f32x4.mul (local.get $xh) (local.get $cv)))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $l2)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows_next)))))
