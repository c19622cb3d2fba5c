;; fp32 -> bfloat16, round to nearest even, 8 lanes at a time (wasm SIMD), in place in the
;; imported memory (tfjs-backend-wasm's heap): the operands of the bf16 matmul (`_bf16.ts`).
;;
;; bf16 is the upper half of an fp32. With b = the fp32 bits as a u32:
;;   finite or infinite:  (b + 0x7fff + ((b >> 16) & 1)) >> 16
;;     adds just under half an ulp of the kept part, plus one when the kept part is odd, so a
;;     tie rounds to the even neighbour; a carry into the exponent is the correct rounding up
;;     (finite values above the largest bf16 round to +-Inf, Inf stays Inf); denormals round the
;;     same way (their bits are linear in the value).
;;   NaN:                 (b >> 16) | 0x0040
;;     the rounding could carry a NaN into Inf: keep sign and payload top, set the quiet bit.
;;
;; (func f32_to_bf16 (src dst n)): byte offsets of n fp32 values and of room for n bf16 values
;; (u16) in the memory. Does all n: 8 at a time, then one at a time for the last 0-7.
;; (func f32_to_bf16_ftz (src dst n)): the same, except that fp32 denormals (exponent bits 0)
;; become signed zero, as oneDNN's reorder and the hardware conversion do: the AdamW step
;; refreshes the bf16 copies of the weights it wrote with whichever rounding their conversion
;; would have used (`_bf16.ts`), so a copy's bits never depend on who made it.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func $round (param $v v128) (result v128)
    (local $hi v128)
    (local.set $hi (i32x4.shr_u (local.get $v) (i32.const 16)))
    (v128.bitselect
      ;; NaN lanes: quieted upper half
      (v128.or (local.get $hi) (i32x4.splat (i32.const 0x40)))
      ;; the others: rounded to nearest even
      (i32x4.shr_u
        (i32x4.add
          (i32x4.add (local.get $v) (i32x4.splat (i32.const 0x7fff)))
          (v128.and (local.get $hi) (i32x4.splat (i32.const 1))))
        (i32.const 16))
      (f32x4.ne (local.get $v) (local.get $v))))
  (func $round_ftz (param $v v128) (result v128)
    ;; denormal lanes (exponent 0): the sign alone
    (v128.bitselect
      (v128.and (i32x4.shr_u (local.get $v) (i32.const 16)) (i32x4.splat (i32.const 0x8000)))
      (call $round (local.get $v))
      (i32x4.eq (v128.and (local.get $v) (i32x4.splat (i32.const 0x7f800000))) (i32x4.splat (i32.const 0)))))
  (func (export "f32_to_bf16_ftz") (param $src i32) (param $dst i32) (param $n i32)
    (local $i i32) (local $end i32) (local $b i32) (local $s i32)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $s (i32.add (local.get $src) (local.get $i)))
        (v128.store
          (i32.add (local.get $dst) (i32.shr_u (local.get $i) (i32.const 1)))
          (i16x8.narrow_i32x4_u
            (call $round_ftz (v128.load (local.get $s)))
            (call $round_ftz (v128.load offset=16 (local.get $s)))))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $next)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $b (i32.load (i32.add (local.get $src) (local.get $i))))
        (i32.store16
          (i32.add (local.get $dst) (i32.shr_u (local.get $i) (i32.const 1)))
          (i32x4.extract_lane 0 (call $round_ftz (i32x4.splat (local.get $b)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail))))
  (func (export "f32_to_bf16") (param $src i32) (param $dst i32) (param $n i32)
    (local $i i32) (local $end i32) (local $b i32) (local $s i32)
    ;; $i counts fp32 bytes read; the output offset is $i / 2
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $s (i32.add (local.get $src) (local.get $i)))
        ;; values 0..0xffff in i32 lanes: the unsigned-saturating narrow keeps them exactly
        (v128.store
          (i32.add (local.get $dst) (i32.shr_u (local.get $i) (i32.const 1)))
          (i16x8.narrow_i32x4_u
            (call $round (v128.load (local.get $s)))
            (call $round (v128.load offset=16 (local.get $s)))))
        (local.set $i (i32.add (local.get $i) (i32.const 32)))
        (br $next)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $b (i32.load (i32.add (local.get $src) (local.get $i))))
        (i32.store16
          (i32.add (local.get $dst) (i32.shr_u (local.get $i) (i32.const 1)))
          (if (result i32)
            (f32.ne (f32.reinterpret_i32 (local.get $b)) (f32.reinterpret_i32 (local.get $b)))
            (then (i32.or (i32.shr_u (local.get $b) (i32.const 16)) (i32.const 0x40)))
            (else
              (i32.shr_u
                (i32.add
                  (i32.add (local.get $b) (i32.const 0x7fff))
                  (i32.and (i32.shr_u (local.get $b) (i32.const 16)) (i32.const 1)))
                (i32.const 16)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tail)))))
