;; Where a content-defined chunk ends (chunker.ts): the gear-hash loop of FastCDC with
;; normalized chunking, in WebAssembly because it is the sync's hottest loop. Measured on this
;; project's machine over 256 MiB of random bytes: the same loop in JavaScript cut 2.0-2.2 GB/s,
;; this one 4.3-4.5 GB/s including the copy of every byte into its memory.
;;
;; Memory: bytes 0-1023 hold the gear table (256 little-endian i32, written by chunker.ts);
;; the bytes to cut follow. `npm run generate` compiles this file into gear-cut-wasm.ts.
(module
  (memory (export "memory") 1)
  ;; The hash where $scan stopped without a boundary: the next range goes on from it.
  (global $hash (mut i32) (i32.const 0))

  ;; The first position p in [$i, $limit) after which the hash of the bytes so far meets
  ;; $mask (all of the mask's bits zero), as p + 1; or 0, with the hash left in $hash.
  ;; Unrolled by four.
  (func $scan (param $i i32) (param $limit i32) (param $mask i32) (param $h i32) (result i32)
    (block $tail
      (loop $four
        (br_if $tail (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $limit)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
          (i32.load (i32.shl (i32.load8_u offset=0 (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (i32.add (local.get $i) (i32.const 1)))))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
          (i32.load (i32.shl (i32.load8_u offset=1 (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (i32.add (local.get $i) (i32.const 2)))))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
          (i32.load (i32.shl (i32.load8_u offset=2 (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (i32.add (local.get $i) (i32.const 3)))))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
          (i32.load (i32.shl (i32.load8_u offset=3 (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (i32.add (local.get $i) (i32.const 4)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $four)))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $i) (local.get $limit)))
        (local.set $h (i32.add (i32.shl (local.get $h) (i32.const 1))
          (i32.load (i32.shl (i32.load8_u (local.get $i)) (i32.const 2)))))
        (if (i32.eqz (i32.and (local.get $h) (local.get $mask)))
          (then (return (i32.add (local.get $i) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $one)))
    (global.set $hash (local.get $h))
    (i32.const 0))

  ;; Where the chunk starting at $start ends, given the bytes up to $end: no boundary before
  ;; $min bytes (the hash starts there), the harder $maskSmall up to $normal bytes, the easier
  ;; $maskLarge after, and $max bytes at most; or $end.
  (func (export "cut")
    (param $start i32) (param $end i32) (param $min i32) (param $normal i32) (param $max i32)
    (param $maskSmall i32) (param $maskLarge i32) (result i32)
    (local $i i32) (local $normalEnd i32) (local $maxEnd i32) (local $cut i32)
    (local.set $i (i32.add (local.get $start) (local.get $min)))
    (if (i32.ge_u (local.get $i) (local.get $end)) (then (return (local.get $end))))
    (local.set $normalEnd (i32.add (local.get $start) (local.get $normal)))
    (if (i32.gt_u (local.get $normalEnd) (local.get $end)) (then (local.set $normalEnd (local.get $end))))
    (local.set $maxEnd (i32.add (local.get $start) (local.get $max)))
    (if (i32.gt_u (local.get $maxEnd) (local.get $end)) (then (local.set $maxEnd (local.get $end))))
    (local.set $cut (call $scan (local.get $i) (local.get $normalEnd) (local.get $maskSmall) (i32.const 0)))
    (if (local.get $cut) (then (return (local.get $cut))))
    (local.set $cut (call $scan (local.get $normalEnd) (local.get $maxEnd) (local.get $maskLarge) (global.get $hash)))
    (if (local.get $cut) (then (return (local.get $cut))))
    (local.get $maxEnd))
)
