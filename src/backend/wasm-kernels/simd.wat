;; Training kernels in WebAssembly SIMD that work in place on the wasm backend's own heap: the
;; module imports the backend's memory, and every pointer is a byte offset into it (a tensor's
;; memoryOffset). Written by hand where the backend's XNNPACK paths would need copies, packing
;; or a branchy JavaScript loop.
(module
  (import "env" "memory" (memory 1))

  ;; MaxPoolGrad for 2x2 windows with stride 2 and no padding (H >= 2*OH, W >= 2*OW: an odd last
  ;; row or column that no window reaches is left alone; the caller zeroes dx then), C a multiple
  ;; of 4. Each dy value goes to the first position of its window equal to the forward output y,
  ;; all other window elements get 0. Returns 1, leaving dx partly written, as soon as a window's
  ;; y might not pick the same element as a scan from -Infinity would (a NaN in it, an all
  ;; -Infinity window, a y that is not its maximum) or dy is not finite: the caller then runs the
  ;; generic scan. Returns 0 when done.
  (func (export "max_pool_grad_2x2")
    (param $x i32) (param $y i32) (param $dy i32) (param $dx i32)
    (param $images i32) (param $oh i32) (param $ow i32) (param $c i32) (param $h i32) (param $w i32) (result i32)
    (local $pixel i32) (local $row i32) (local $xo i32) (local $yo i32) (local $end i32)
    (local $n i32) (local $r i32) (local $j i32) (local $rowSkip i32) (local $imageSkip i32)
    (local $m v128) (local $g v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $e0 v128) (local $e1 v128) (local $e2 v128) (local $e3 v128) (local $ok v128) (local $seen v128)
    (local.set $pixel (i32.shl (local.get $c) (i32.const 2)))
    (local.set $row (i32.mul (local.get $w) (local.get $pixel)))
    ;; from the end of a row of windows to the next: an odd last column, and the windows' second row
    (local.set $rowSkip (i32.add (i32.mul (i32.sub (local.get $w) (i32.shl (local.get $ow) (i32.const 1))) (local.get $pixel)) (local.get $row)))
    (local.set $imageSkip (i32.mul (i32.sub (local.get $h) (i32.shl (local.get $oh) (i32.const 1))) (local.get $row)))
    (block $imagesDone
      (loop $images
        (br_if $imagesDone (i32.ge_u (local.get $n) (local.get $images)))
        (local.set $r (i32.const 0))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $r) (local.get $oh)))
        (local.set $j (i32.const 0))
        (block $rowDone
          (loop $windows
            (br_if $rowDone (i32.ge_u (local.get $j) (local.get $ow)))
            (local.set $end (i32.add (local.get $yo) (local.get $pixel)))
            (block $windowDone
              (loop $lanes
                (br_if $windowDone (i32.ge_u (local.get $yo) (local.get $end)))
                (local.set $m (v128.load (i32.add (local.get $y) (local.get $yo))))
                (local.set $g (v128.load (i32.add (local.get $dy) (local.get $yo))))
                (local.set $a0 (v128.load (i32.add (local.get $x) (local.get $xo))))
                (local.set $a1 (v128.load (i32.add (local.get $x) (i32.add (local.get $xo) (local.get $pixel)))))
                (local.set $a2 (v128.load (i32.add (local.get $x) (i32.add (local.get $xo) (local.get $row)))))
                (local.set $a3 (v128.load (i32.add (local.get $x)
                  (i32.add (local.get $xo) (i32.add (local.get $row) (local.get $pixel))))))
                (local.set $e0 (f32x4.eq (local.get $a0) (local.get $m)))
                (local.set $e1 (f32x4.eq (local.get $a1) (local.get $m)))
                (local.set $e2 (f32x4.eq (local.get $a2) (local.get $m)))
                (local.set $e3 (f32x4.eq (local.get $a3) (local.get $m)))
                ;; y bounds the window (false with any NaN) and occurs in it, y > -Infinity,
                ;; dy - dy == 0 (false for an infinite or NaN dy)
                (local.set $ok
                  (v128.and
                    (v128.and
                      (v128.and (f32x4.le (local.get $a0) (local.get $m)) (f32x4.le (local.get $a1) (local.get $m)))
                      (v128.and (f32x4.le (local.get $a2) (local.get $m)) (f32x4.le (local.get $a3) (local.get $m))))
                    (v128.and
                      (v128.or (v128.or (local.get $e0) (local.get $e1)) (v128.or (local.get $e2) (local.get $e3)))
                      (v128.and
                        (f32x4.ne (local.get $m) (f32x4.splat (f32.const -inf)))
                        (f32x4.eq (f32x4.sub (local.get $g) (local.get $g)) (f32x4.splat (f32.const 0)))))))
                (if (i32.eqz (i32x4.all_true (local.get $ok))) (then (return (i32.const 1))))
                ;; the first equal position takes dy: masks of "equal here and nowhere before"
                (v128.store (i32.add (local.get $dx) (local.get $xo)) (v128.and (local.get $g) (local.get $e0)))
                (v128.store (i32.add (local.get $dx) (i32.add (local.get $xo) (local.get $pixel)))
                  (v128.and (local.get $g) (v128.andnot (local.get $e1) (local.get $e0))))
                (local.set $seen (v128.or (local.get $e0) (local.get $e1)))
                (v128.store (i32.add (local.get $dx) (i32.add (local.get $xo) (local.get $row)))
                  (v128.and (local.get $g) (v128.andnot (local.get $e2) (local.get $seen))))
                (v128.store (i32.add (local.get $dx) (i32.add (local.get $xo) (i32.add (local.get $row) (local.get $pixel))))
                  (v128.and (local.get $g) (v128.andnot (local.get $e3) (v128.or (local.get $seen) (local.get $e2)))))
                (local.set $xo (i32.add (local.get $xo) (i32.const 16)))
                (local.set $yo (i32.add (local.get $yo) (i32.const 16)))
                (br $lanes)))
            ;; past the window's second column
            (local.set $xo (i32.add (local.get $xo) (local.get $pixel)))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $windows)))
        (local.set $xo (i32.add (local.get $xo) (local.get $rowSkip)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows)))
        ;; past an odd last row
        (local.set $xo (i32.add (local.get $xo) (local.get $imageSkip)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $images)))
    (i32.const 0))

  ;; Filter gradient of a convolution:
  ;;   dw[t, co] = sum over images n and output pixels (oh, ow) of
  ;;               xp[base(n, oh, ow) + offsets[t]] * dy[n, oh, ow, co]
  ;; xp is the zero-padded input [n, Hp, Wp, CI]; base(n, oh, ow) is the byte offset of pixel
  ;; (oh*sh, ow*sw) of image n, offsets[t] (an i32 table) the byte offset of tap t from it. CO is a
  ;; multiple of 8. Taps go four at a time against 8 output channels, with eight accumulators
  ;; kept in registers over one image; images are the outer loop, so one image's dy stays in
  ;; cache across the passes. dw is overwritten.
  (func (export "conv_filter_grad")
    (param $xp i32) (param $dy i32) (param $dw i32) (param $offsets i32) (param $taps i32)
    (param $images i32) (param $oh i32) (param $ow i32) (param $co i32)
    (param $colStep i32) (param $rowStep i32) (param $imageStep i32)
    (local $n i32) (local $t i32) (local $cb i32) (local $r i32) (local $q i32) (local $k i32)
    (local $o0 i32) (local $o1 i32) (local $o2 i32) (local $o3 i32) (local $image i32) (local $rowBase i32) (local $px i32)
    (local $dyImage i32) (local $dyp i32) (local $pixelBytes i32) (local $out i32) (local $last i32) (local $live i32)
    (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
    (local $acc4 v128) (local $acc5 v128) (local $acc6 v128) (local $acc7 v128)
    (local $d0 v128) (local $d1 v128) (local $v v128)
    (local.set $pixelBytes (i32.shl (local.get $co) (i32.const 2)))
    ;; dw = 0
    (local.set $out (local.get $dw))
    (local.set $last (i32.add (local.get $dw) (i32.mul (local.get $taps) (local.get $pixelBytes))))
    (block $zeroed
      (loop $zero
        (br_if $zeroed (i32.ge_u (local.get $out) (local.get $last)))
        (v128.store (local.get $out) (v128.const i32x4 0 0 0 0))
        (local.set $out (i32.add (local.get $out) (i32.const 16)))
        (br $zero)))
    (local.set $image (local.get $xp))
    (local.set $dyImage (local.get $dy))
    (local.set $n (i32.const 0))
    (block $imagesDone
      (loop $images
        (br_if $imagesDone (i32.ge_u (local.get $n) (local.get $images)))
        (local.set $t (i32.const 0))
        (block $tapsDone
          (loop $tapGroups
            (br_if $tapsDone (i32.ge_u (local.get $t) (local.get $taps)))
            ;; taps of this group that exist (1-4); a short last group repeats its last tap,
            ;; whose extra sums are not stored
            (local.set $live (i32.sub (local.get $taps) (local.get $t)))
            (if (i32.gt_u (local.get $live) (i32.const 4)) (then (local.set $live (i32.const 4))))
            (local.set $k (i32.add (local.get $offsets) (i32.shl (local.get $t) (i32.const 2))))
            (local.set $o0 (i32.load (local.get $k)))
            (local.set $o1 (local.get $o0))
            (if (i32.gt_u (local.get $live) (i32.const 1)) (then (local.set $o1 (i32.load offset=4 (local.get $k)))))
            (local.set $o2 (local.get $o1))
            (if (i32.gt_u (local.get $live) (i32.const 2)) (then (local.set $o2 (i32.load offset=8 (local.get $k)))))
            (local.set $o3 (local.get $o2))
            (if (i32.gt_u (local.get $live) (i32.const 3)) (then (local.set $o3 (i32.load offset=12 (local.get $k)))))
            (local.set $cb (i32.const 0))
            (block $blocksDone
              (loop $blocks
                (br_if $blocksDone (i32.ge_u (local.get $cb) (local.get $pixelBytes)))
                (local.set $out (i32.add (local.get $dw) (i32.add (i32.mul (local.get $t) (local.get $pixelBytes)) (local.get $cb))))
                (local.set $acc0 (v128.load (local.get $out)))
                (local.set $acc1 (v128.load offset=16 (local.get $out)))
                (local.set $acc2 (v128.const i32x4 0 0 0 0))
                (local.set $acc3 (v128.const i32x4 0 0 0 0))
                (local.set $acc4 (v128.const i32x4 0 0 0 0))
                (local.set $acc5 (v128.const i32x4 0 0 0 0))
                (local.set $acc6 (v128.const i32x4 0 0 0 0))
                (local.set $acc7 (v128.const i32x4 0 0 0 0))
                (if (i32.gt_u (local.get $live) (i32.const 1))
                  (then (local.set $k (i32.add (local.get $out) (local.get $pixelBytes)))
                        (local.set $acc2 (v128.load (local.get $k)))
                        (local.set $acc3 (v128.load offset=16 (local.get $k)))))
                (if (i32.gt_u (local.get $live) (i32.const 2))
                  (then (local.set $k (i32.add (local.get $k) (local.get $pixelBytes)))
                        (local.set $acc4 (v128.load (local.get $k)))
                        (local.set $acc5 (v128.load offset=16 (local.get $k)))))
                (if (i32.gt_u (local.get $live) (i32.const 3))
                  (then (local.set $k (i32.add (local.get $k) (local.get $pixelBytes)))
                        (local.set $acc6 (v128.load (local.get $k)))
                        (local.set $acc7 (v128.load offset=16 (local.get $k)))))
                (local.set $dyp (i32.add (local.get $dyImage) (local.get $cb)))
                (local.set $rowBase (local.get $image))
                (local.set $r (i32.const 0))
                (block $rowsDone
                  (loop $rows
                    (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $oh)))
                    (local.set $px (local.get $rowBase))
                    (local.set $q (i32.const 0))
                    (block $pixelsDone
                      (loop $pixels
                        (br_if $pixelsDone (i32.ge_u (local.get $q) (local.get $ow)))
                        (local.set $d0 (v128.load (local.get $dyp)))
                        (local.set $d1 (v128.load offset=16 (local.get $dyp)))
                        (local.set $v (v128.load32_splat (i32.add (local.get $px) (local.get $o0))))
                        (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (local.get $v) (local.get $d0))))
                        (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $v) (local.get $d1))))
                        (local.set $v (v128.load32_splat (i32.add (local.get $px) (local.get $o1))))
                        (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (local.get $v) (local.get $d0))))
                        (local.set $acc3 (f32x4.add (local.get $acc3) (f32x4.mul (local.get $v) (local.get $d1))))
                        (local.set $v (v128.load32_splat (i32.add (local.get $px) (local.get $o2))))
                        (local.set $acc4 (f32x4.add (local.get $acc4) (f32x4.mul (local.get $v) (local.get $d0))))
                        (local.set $acc5 (f32x4.add (local.get $acc5) (f32x4.mul (local.get $v) (local.get $d1))))
                        (local.set $v (v128.load32_splat (i32.add (local.get $px) (local.get $o3))))
                        (local.set $acc6 (f32x4.add (local.get $acc6) (f32x4.mul (local.get $v) (local.get $d0))))
                        (local.set $acc7 (f32x4.add (local.get $acc7) (f32x4.mul (local.get $v) (local.get $d1))))
                        (local.set $px (i32.add (local.get $px) (local.get $colStep)))
                        (local.set $dyp (i32.add (local.get $dyp) (local.get $pixelBytes)))
                        (local.set $q (i32.add (local.get $q) (i32.const 1)))
                        (br $pixels)))
                    (local.set $rowBase (i32.add (local.get $rowBase) (local.get $rowStep)))
                    (local.set $r (i32.add (local.get $r) (i32.const 1)))
                    (br $rows)))
                (v128.store (local.get $out) (local.get $acc0))
                (v128.store offset=16 (local.get $out) (local.get $acc1))
                (if (i32.gt_u (local.get $live) (i32.const 1))
                  (then (local.set $k (i32.add (local.get $out) (local.get $pixelBytes)))
                        (v128.store (local.get $k) (local.get $acc2))
                        (v128.store offset=16 (local.get $k) (local.get $acc3))))
                (if (i32.gt_u (local.get $live) (i32.const 2))
                  (then (local.set $k (i32.add (local.get $k) (local.get $pixelBytes)))
                        (v128.store (local.get $k) (local.get $acc4))
                        (v128.store offset=16 (local.get $k) (local.get $acc5))))
                (if (i32.gt_u (local.get $live) (i32.const 3))
                  (then (local.set $k (i32.add (local.get $k) (local.get $pixelBytes)))
                        (v128.store (local.get $k) (local.get $acc6))
                        (v128.store offset=16 (local.get $k) (local.get $acc7))))
                (local.set $cb (i32.add (local.get $cb) (i32.const 32)))
                (br $blocks)))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (br $tapGroups)))
        (local.set $image (i32.add (local.get $image) (local.get $imageStep)))
        (local.set $dyImage (i32.add (local.get $dyImage) (i32.mul (i32.mul (local.get $oh) (local.get $ow)) (local.get $pixelBytes))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $images)))
  )

  ;; A convolution as a gather product: for every output pixel p and output channel o,
  ;;   out[p, o] = sum over spatial taps s and channels c of in[bases[p] + taps[s] + 4c] * w[(s*C + c)*N + o]
  ;; bases (i32, bytes into in) holds one entry per pixel, padded to a multiple of 4 by repeating the
  ;; last; taps (i32, bytes) one per spatial tap; C is the run of values read from each tap (a
  ;; filter row's KW*channels when its taps are adjacent); N is a multiple of 8. It serves the
  ;; forward convolution (in = padded x, w = the filter), matrix products (one tap) and the
  ;; cols = dy W^T of the input gradient. Tiles of 4 pixels by 8 outputs keep eight accumulators
  ;; in registers over the whole sum; out is overwritten.
  (func (export "conv_gather")
    (param $in i32) (param $bases i32) (param $pixels i32) (param $taps i32) (param $spatial i32)
    (param $channels i32) (param $w i32) (param $n i32) (param $out i32)
    (local $p i32) (local $cb i32) (local $s i32) (local $c i32) (local $t i32) (local $rowBytes i32)
    (local $b0 i32) (local $b1 i32) (local $b2 i32) (local $b3 i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $wp i32) (local $o i32)
    (local $acc0 v128) (local $acc1 v128) (local $acc2 v128) (local $acc3 v128)
    (local $acc4 v128) (local $acc5 v128) (local $acc6 v128) (local $acc7 v128)
    (local $w0 v128) (local $w1 v128) (local $v v128)
    (local.set $rowBytes (i32.shl (local.get $n) (i32.const 2)))
    (block $pixelsDone
      (loop $tiles
        (br_if $pixelsDone (i32.ge_u (local.get $p) (local.get $pixels)))
        (local.set $b0 (i32.add (local.get $in) (i32.load (i32.add (local.get $bases) (i32.shl (local.get $p) (i32.const 2))))))
        (local.set $b1 (i32.add (local.get $in) (i32.load offset=4 (i32.add (local.get $bases) (i32.shl (local.get $p) (i32.const 2))))))
        (local.set $b2 (i32.add (local.get $in) (i32.load offset=8 (i32.add (local.get $bases) (i32.shl (local.get $p) (i32.const 2))))))
        (local.set $b3 (i32.add (local.get $in) (i32.load offset=12 (i32.add (local.get $bases) (i32.shl (local.get $p) (i32.const 2))))))
        (local.set $cb (i32.const 0))
        (block $blocksDone
          (loop $blocks
            (br_if $blocksDone (i32.ge_u (local.get $cb) (local.get $rowBytes)))
            (local.set $acc0 (v128.const i32x4 0 0 0 0))
            (local.set $acc1 (v128.const i32x4 0 0 0 0))
            (local.set $acc2 (v128.const i32x4 0 0 0 0))
            (local.set $acc3 (v128.const i32x4 0 0 0 0))
            (local.set $acc4 (v128.const i32x4 0 0 0 0))
            (local.set $acc5 (v128.const i32x4 0 0 0 0))
            (local.set $acc6 (v128.const i32x4 0 0 0 0))
            (local.set $acc7 (v128.const i32x4 0 0 0 0))
            (local.set $wp (i32.add (local.get $w) (local.get $cb)))
            (local.set $s (i32.const 0))
            (block $tapsDone
              (loop $spatialTaps
                (br_if $tapsDone (i32.ge_u (local.get $s) (local.get $spatial)))
                (local.set $t (i32.load (i32.add (local.get $taps) (i32.shl (local.get $s) (i32.const 2)))))
                (local.set $a0 (i32.add (local.get $b0) (local.get $t)))
                (local.set $a1 (i32.add (local.get $b1) (local.get $t)))
                (local.set $a2 (i32.add (local.get $b2) (local.get $t)))
                (local.set $a3 (i32.add (local.get $b3) (local.get $t)))
                (local.set $c (i32.const 0))
                (block $channelsDone
                  (loop $channels
                    (br_if $channelsDone (i32.ge_u (local.get $c) (local.get $channels)))
                    (local.set $w0 (v128.load (local.get $wp)))
                    (local.set $w1 (v128.load offset=16 (local.get $wp)))
                    (local.set $v (v128.load32_splat (local.get $a0)))
                    (local.set $acc0 (f32x4.add (local.get $acc0) (f32x4.mul (local.get $v) (local.get $w0))))
                    (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $v) (local.get $w1))))
                    (local.set $v (v128.load32_splat (local.get $a1)))
                    (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (local.get $v) (local.get $w0))))
                    (local.set $acc3 (f32x4.add (local.get $acc3) (f32x4.mul (local.get $v) (local.get $w1))))
                    (local.set $v (v128.load32_splat (local.get $a2)))
                    (local.set $acc4 (f32x4.add (local.get $acc4) (f32x4.mul (local.get $v) (local.get $w0))))
                    (local.set $acc5 (f32x4.add (local.get $acc5) (f32x4.mul (local.get $v) (local.get $w1))))
                    (local.set $v (v128.load32_splat (local.get $a3)))
                    (local.set $acc6 (f32x4.add (local.get $acc6) (f32x4.mul (local.get $v) (local.get $w0))))
                    (local.set $acc7 (f32x4.add (local.get $acc7) (f32x4.mul (local.get $v) (local.get $w1))))
                    (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
                    (local.set $a1 (i32.add (local.get $a1) (i32.const 4)))
                    (local.set $a2 (i32.add (local.get $a2) (i32.const 4)))
                    (local.set $a3 (i32.add (local.get $a3) (i32.const 4)))
                    (local.set $wp (i32.add (local.get $wp) (local.get $rowBytes)))
                    (local.set $c (i32.add (local.get $c) (i32.const 1)))
                    (br $channels)))
                (local.set $s (i32.add (local.get $s) (i32.const 1)))
                (br $spatialTaps)))
            ;; stores of the tile's pixels that exist
            (local.set $o (i32.add (local.get $out) (i32.add (i32.mul (local.get $p) (local.get $rowBytes)) (local.get $cb))))
            (v128.store (local.get $o) (local.get $acc0))
            (v128.store offset=16 (local.get $o) (local.get $acc1))
            (if (i32.lt_u (i32.add (local.get $p) (i32.const 1)) (local.get $pixels))
              (then (local.set $o (i32.add (local.get $o) (local.get $rowBytes)))
                    (v128.store (local.get $o) (local.get $acc2))
                    (v128.store offset=16 (local.get $o) (local.get $acc3))))
            (if (i32.lt_u (i32.add (local.get $p) (i32.const 2)) (local.get $pixels))
              (then (local.set $o (i32.add (local.get $o) (local.get $rowBytes)))
                    (v128.store (local.get $o) (local.get $acc4))
                    (v128.store offset=16 (local.get $o) (local.get $acc5))))
            (if (i32.lt_u (i32.add (local.get $p) (i32.const 3)) (local.get $pixels))
              (then (local.set $o (i32.add (local.get $o) (local.get $rowBytes)))
                    (v128.store (local.get $o) (local.get $acc6))
                    (v128.store offset=16 (local.get $o) (local.get $acc7))))
            (local.set $cb (i32.add (local.get $cb) (i32.const 32)))
            (br $blocks)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $tiles)))
  )

  ;; The scatter-add of col2im: for every pixel p and spatial tap s,
  ;;   dx[bases[p] + taps[s] + c] += cols[(p*S + s)*C + c]   for c < C (a multiple of 4)
  ;; with bases and taps in bytes; dx must be zeroed (or hold what to add to) beforehand.
  (func (export "col2im_add")
    (param $cols i32) (param $dx i32) (param $bases i32) (param $pixels i32) (param $taps i32)
    (param $spatial i32) (param $channels i32)
    (local $p i32) (local $s i32) (local $base i32) (local $d i32) (local $end i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $channels) (i32.const 2)))
    (block $pixelsDone
      (loop $pixelLoop
        (br_if $pixelsDone (i32.ge_u (local.get $p) (local.get $pixels)))
        (local.set $base (i32.add (local.get $dx) (i32.load (i32.add (local.get $bases) (i32.shl (local.get $p) (i32.const 2))))))
        (local.set $s (i32.const 0))
        (block $tapsDone
          (loop $tapLoop
            (br_if $tapsDone (i32.ge_u (local.get $s) (local.get $spatial)))
            (local.set $d (i32.add (local.get $base) (i32.load (i32.add (local.get $taps) (i32.shl (local.get $s) (i32.const 2))))))
            (local.set $end (i32.add (local.get $d) (local.get $rowBytes)))
            (block $rowDone
              (loop $lanes
                (br_if $rowDone (i32.ge_u (local.get $d) (local.get $end)))
                (v128.store (local.get $d) (f32x4.add (v128.load (local.get $d)) (v128.load (local.get $cols))))
                (local.set $d (i32.add (local.get $d) (i32.const 16)))
                (local.set $cols (i32.add (local.get $cols) (i32.const 16)))
                (br $lanes)))
            (local.set $s (i32.add (local.get $s) (i32.const 1)))
            (br $tapLoop)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $pixelLoop)))
  )

  ;; out[r, c] = x[r, c] + bias[c] for rows of C channels (a multiple of 4): a conv layer's bias,
  ;; one pass instead of repeating the bias to x's shape and adding.
  (func (export "bias_add")
    (param $x i32) (param $bias i32) (param $out i32) (param $rows i32) (param $channels i32)
    (local $r i32) (local $c i32) (local $rowBytes i32)
    (local.set $rowBytes (i32.shl (local.get $channels) (i32.const 2)))
    (block $rowsDone
      (loop $rowLoop
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $c (i32.const 0))
        (block $rowDone
          (loop $lanes
            (br_if $rowDone (i32.ge_u (local.get $c) (local.get $rowBytes)))
            (v128.store (i32.add (local.get $out) (local.get $c))
              (f32x4.add (v128.load (i32.add (local.get $x) (local.get $c))) (v128.load (i32.add (local.get $bias) (local.get $c)))))
            (local.set $c (i32.add (local.get $c) (i32.const 16)))
            (br $lanes)))
        (local.set $x (i32.add (local.get $x) (local.get $rowBytes)))
        (local.set $out (i32.add (local.get $out) (local.get $rowBytes)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rowLoop)))
  )
)
