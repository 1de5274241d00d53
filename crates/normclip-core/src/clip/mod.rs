//! Norm clipping of gradients and updates over many tensors at once, with the formulas of
//! TensorFlow (`tf.clip_by_norm`, `tf.clip_by_global_norm`), Keras 3 (`clipnorm`,
//! `global_clipnorm`, `clipvalue`), PyTorch (`clip_grad_norm_`), Opacus / Optax / TF Privacy
//! (per-example clipping for DP-SGD) and federated update clipping.
//!
//! Every entry point checks all of its arguments before it writes anything, reads each element
//! once for the norms and once more to scale it (12 B per f32 element in place), computes norms in
//! f64 with the constraints' accumulation scheme (see [`reduce`]), and gives bit-identical results
//! whatever the thread count. Given a norm, each output is the library's formula evaluated in the
//! element type, as that library evaluates it (the factor and where it is rounded); where the
//! element type cannot hold an intermediate (a norm beyond float32's range) the formula is
//! evaluated in f64 instead — the one place where we deliberately differ.
//!
//! ```
//! use normclip_core::clip::{self, TensorMut};
//! let mut a = [3.0f32, 4.0];
//! let mut b = [0.0f64, 12.0];
//! let mut list = [TensorMut::F32(&mut a), TensorMut::F64(&mut b)];
//! let norm = clip::clip_by_global_norm(&mut list, 6.5, None).unwrap();
//! assert_eq!(norm, 13.0);
//! assert_eq!(a, [1.5, 2.0]);
//! ```

pub(crate) mod kernels;
pub mod reduce;
#[cfg(test)]
mod tests;

use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::layout::{element_count, Axes, Inner, Plan};
use crate::parallel::use_threads;
pub use reduce::NormType;

/// Elements per task of a parallel scale pass.
const SCALE_TASK: usize = 1 << 16;
/// Opacus' and PyTorch's epsilon in `C / (n + 1e-6)`.
pub const TORCH_EPSILON: f64 = 1e-6;

/// A tensor to be clipped in place: a float32 or float64 buffer.
pub enum TensorMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
}

/// A tensor that is only read.
#[derive(Clone, Copy)]
pub enum TensorRef<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl TensorMut<'_> {
    pub fn len(&self) -> usize {
        match self {
            TensorMut::F32(d) => d.len(),
            TensorMut::F64(d) => d.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn as_ref(&self) -> TensorRef<'_> {
        match self {
            TensorMut::F32(d) => TensorRef::F32(d),
            TensorMut::F64(d) => TensorRef::F64(d),
        }
    }
}

impl TensorRef<'_> {
    pub fn len(&self) -> usize {
        match self {
            TensorRef::F32(d) => d.len(),
            TensorRef::F64(d) => d.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Calls the generic body with the tensor's element slice and that element type's kernels.
macro_rules! with_data {
    ($tensor:expr, |$data:ident, $k:ident| $body:expr) => {
        match $tensor {
            TensorRef::F32($data) => {
                let $k = Kernels::<f32>::active();
                $body
            }
            TensorRef::F64($data) => {
                let $k = Kernels::<f64>::active();
                $body
            }
        }
    };
}

impl NormType {
    /// PyTorch's `norm_type`: 1, 2 or infinity (other p-norms are not supported).
    pub fn from_p(p: f64) -> Result<NormType> {
        match p {
            1.0 => Ok(NormType::L1),
            2.0 => Ok(NormType::L2),
            f64::INFINITY => Ok(NormType::Inf),
            other => Err(Error::range(format!(
                "normType: expected 1, 2 or Infinity, got {other}"
            ))),
        }
    }
}

/// A clip bound (clip norm, max norm, clip value): a finite number >= 0. TF clamps a negative
/// `clip_norm` to 0 (which zeroes every gradient); Keras treats a value <= 0 as "no clipping";
/// we reject it so neither surprise can happen silently. 0 is accepted and means what each
/// library's formula makes of it.
pub fn check_bound(name: &str, value: f64) -> Result<()> {
    if !value.is_finite() || value < 0.0 {
        return Err(Error::range(format!(
            "{name}: expected a finite number >= 0, got {value}"
        )));
    }
    Ok(())
}

/// The p-norm of each tensor, in f64, in one pass over each (in parallel across tensors when
/// the list is large; the values do not depend on it).
pub fn tensor_norms(tensors: &[TensorRef], p: NormType) -> Result<Vec<f64>> {
    let one =
        |tensor: &TensorRef| -> f64 { with_data!(*tensor, |data, k| reduce::norm(data, p, k)) };
    let total: usize = tensors.iter().map(TensorRef::len).sum();
    Ok(if tensors.len() > 1 && use_threads(total) {
        tensors.par_iter().map(one).collect()
    } else {
        tensors.iter().map(one).collect()
    })
}

/// TF's `tf.linalg.global_norm`: the L2 norm of all elements of all tensors.
pub fn global_norm(tensors: &[TensorRef]) -> Result<f64> {
    Ok(reduce::combine(
        &tensor_norms(tensors, NormType::L2)?,
        NormType::L2,
    ))
}

/// PyTorch's `get_total_norm`: the p-norm of the per-tensor p-norms. With
/// `error_if_nonfinite`, a NaN or infinite total is an error (nothing has been written).
pub fn total_norm(tensors: &[TensorRef], p: NormType, error_if_nonfinite: bool) -> Result<f64> {
    let total = reduce::combine(&tensor_norms(tensors, p)?, p);
    if error_if_nonfinite && !total.is_finite() {
        return Err(Error::range(format!(
            "the total norm of the gradients is {total}: errorIfNonfinite is set, so no gradient was clipped"
        )));
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Scale passes

/// `x *= factor` over a tensor, skipped when the factor is 1 (`x · 1` is `x` for every x).
fn scale_by<T: Element>(data: &mut [T], factor: T, k: &Kernels<T>) {
    if factor == T::ONE {
        return;
    }
    for_chunks(data, |chunk| (k.multiply_run)(chunk, factor));
}

/// Runs `f` over `data` in tasks, in parallel when large. Elementwise work: no order to keep.
fn for_chunks<T: Element>(data: &mut [T], f: impl Fn(&mut [T]) + Sync + Send) {
    if use_threads(data.len()) {
        data.par_chunks_mut(SCALE_TASK).for_each(f);
    } else {
        data.chunks_mut(SCALE_TASK).for_each(f);
    }
}

/// Multiplies each tensor by a factor computed for its element type from a value in f64.
fn scale_each(tensors: &mut [TensorMut], factor32: impl Fn() -> f32, factor64: impl Fn() -> f64) {
    let (f32_factor, f64_factor) = (factor32(), factor64());
    for tensor in tensors.iter_mut() {
        match tensor {
            TensorMut::F32(data) => scale_by(data, f32_factor, Kernels::<f32>::active()),
            TensorMut::F64(data) => scale_by(data, f64_factor, Kernels::<f64>::active()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TensorFlow / Keras

/// TF's `clip_by_global_norm` scale, `c · min(1/N, 1/c) + (N − N)`, in the element type: a NaN or
/// infinite N gives NaN, N = 0 gives `c · (1/c)`. When N is finite but beyond the element type's
/// range the formula runs in f64 (TF's f32 sum would be infinite and give NaN).
pub fn tf_global_scale<T: Element>(norm: f64, clip_norm: f64) -> T {
    let n = T::from_f64(norm);
    if n.is_infinite() && norm.is_finite() {
        return T::from_f64(clip_norm * (1.0 / norm).min(1.0 / clip_norm));
    }
    let c = T::from_f64(clip_norm);
    let inv_n = T::ONE / n;
    let inv_c = T::ONE / c;
    // `minimum` as TF computes it: NaN in either operand gives NaN (n NaN makes inv_n NaN).
    let smaller = if inv_n.is_nan() || inv_n < inv_c {
        inv_n
    } else {
        inv_c
    };
    let diff = T::from_f64(n.to_f64() - n.to_f64());
    c * smaller + diff
}

/// TF's `tf.clip_by_global_norm(t_list, clip_norm, use_norm)`: every tensor multiplied by
/// [`tf_global_scale`] (cast to its dtype). Returns the global norm N (or `use_norm`).
/// Keras 3's `global_clipnorm` is the same formula.
pub fn clip_by_global_norm(
    tensors: &mut [TensorMut],
    clip_norm: f64,
    use_norm: Option<f64>,
) -> Result<f64> {
    check_bound("clipNorm", clip_norm)?;
    if let Some(n) = use_norm {
        if n < 0.0 {
            return Err(Error::range(format!(
                "useNorm: expected a norm (>= 0, NaN or Infinity), got {n}"
            )));
        }
    }
    let norm = match use_norm {
        Some(n) => n,
        None => global_norm(&tensors.iter().map(TensorMut::as_ref).collect::<Vec<_>>())?,
    };
    scale_each(
        tensors,
        || tf_global_scale::<f32>(norm, clip_norm),
        || tf_global_scale::<f64>(norm, clip_norm),
    );
    Ok(norm)
}

/// TF's `tf.clip_by_norm(t, clip_norm, axes)` (and Keras 3's `clipnorm`, axes = all) in place:
/// `t · c / max(‖t‖_axes, c)` with TF's two roundings `(t · c) / max(n, c)`, the norm taken over
/// `axes` (Keras/normclip `axis` semantics; [`Axes::All`] for one norm). Slices whose
/// intermediates the element type cannot hold (see `is_wide`) are computed in f64, where TF
/// returns zeros or NaN.
pub fn clip_by_norm<T: Element>(
    data: &mut [T],
    shape: &[usize],
    axes: &Axes,
    clip_norm: f64,
) -> Result<()> {
    check_bound("clipNorm", clip_norm)?;
    let len = element_count(shape)?;
    if len != data.len() {
        return Err(Error::range(format!(
            "array: expected length {len} (the product of shape {shape:?}), got {}",
            data.len()
        )));
    }
    // Axes are checked even for an empty tensor, which has nothing to clip: no plan is made for
    // it (its slice count can be far beyond memory, [0, 2^40, 2^40] along axis 0).
    axes.reduced_mask(shape.len())?;
    if data.is_empty() {
        return Ok(());
    }
    let plan = Plan::new(shape, axes)?;
    let k = Kernels::<T>::active();
    let mut norms = vec![0.0f64; plan.slices];
    reduce::slice_l2_norms(data, &plan, k, &mut norms);
    let c = T::from_f64(clip_norm);
    let mut any_wide = false;
    let divisors: Vec<T> = norms
        .iter()
        .map(|&n| {
            any_wide |= is_wide::<T>(n, clip_norm);
            let norm = T::from_f64(n);
            // `maximum(l2norm, c)` as TF computes it: a NaN norm gives NaN.
            if norm.is_nan() || norm > c {
                norm
            } else {
                c
            }
        })
        .collect();
    if any_wide {
        // Rare (see `is_wide`): the whole tensor by the slow walk, those slices in f64 as
        // `x · (c / max(n, c))`, the others with TF's formula.
        let len = data.len();
        for (x, slice) in data.iter_mut().zip(reduce::slice_of_each(&plan, len)) {
            let n = norms[slice];
            *x = if is_wide::<T>(n, clip_norm) {
                T::from_f64(x.to_f64() * (clip_norm / n.max(clip_norm)))
            } else {
                (*x * c) / divisors[slice]
            };
        }
        return Ok(());
    }
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    for (group, block) in data.chunks_exact_mut(group_len).enumerate() {
        let base = plan.group_base(group);
        let values = &divisors[base..base + per_group];
        match plan.inner {
            Inner::Runs { run_len, .. } => {
                if per_group == 1 {
                    let d = values[0];
                    for_chunks(block, |chunk| (k.mul_div_run)(chunk, c, d));
                } else {
                    for (run, &d) in block.chunks_exact_mut(run_len).zip(values) {
                        (k.mul_div_run)(run, c, d);
                    }
                }
            }
            Inner::Columns { cols, .. } => {
                let rows_per_task = SCALE_TASK.div_ceil(cols).max(1);
                for_chunks_rows(block, rows_per_task * cols, |rows| {
                    (k.mul_div_columns)(rows, c, values)
                });
            }
        }
    }
    Ok(())
}

/// Whether TF's element-type formula cannot hold a slice's intermediates: `x · c` for its
/// largest element (at most the norm) beyond the element range, or the slice so small that
/// `x · c` underflows while the result `x · c / max(n, c)` need not (TF returns zeros there, or
/// NaN once its CPU kernels flush denormals to zero). Such slices are computed in f64.
fn is_wide<T: Element>(norm: f64, clip_norm: f64) -> bool {
    if !norm.is_finite() || norm == 0.0 {
        return false;
    }
    let tiny = if T::SQUARES_CAN_OVERFLOW {
        7.888609052210118e-31 // 2^-100
    } else {
        9.332636185032189e-302 // 2^-1000
    };
    T::from_f64(norm * clip_norm.max(1.0)).is_infinite() || norm.max(clip_norm) * clip_norm < tiny
}

fn for_chunks_rows<T: Element>(data: &mut [T], task: usize, f: impl Fn(&mut [T]) + Sync + Send) {
    if use_threads(data.len()) {
        data.par_chunks_mut(task.max(1)).for_each(f);
    } else {
        data.chunks_mut(task.max(1)).for_each(f);
    }
}

/// Keras 3's `clipvalue` (`ops.clip(g, -v, v)`, TF's `clip_by_value`) on every tensor in place;
/// NaN stays NaN, -0 stays -0.
pub fn clip_by_value(tensors: &mut [TensorMut], clip_value: f64) -> Result<()> {
    check_bound("clipValue", clip_value)?;
    for tensor in tensors.iter_mut() {
        match tensor {
            TensorMut::F32(data) => {
                let (v, k) = (clip_value as f32, Kernels::<f32>::active());
                for_chunks(data, |chunk| (k.clamp)(chunk, -v, v));
            }
            TensorMut::F64(data) => {
                let k = Kernels::<f64>::active();
                for_chunks(data, |chunk| (k.clamp)(chunk, -clip_value, clip_value));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// PyTorch

/// PyTorch's clip coefficient, `min(max_norm / (total + 1e-6), 1)`, in f64; NaN stays NaN
/// (`clamp` keeps NaN), an infinite total gives 0.
pub fn torch_coefficient(max_norm: f64, total: f64) -> f64 {
    let coef = max_norm / (total + TORCH_EPSILON);
    if coef.is_nan() {
        coef
    } else {
        coef.min(1.0)
    }
}

/// PyTorch's `clip_grads_with_norm_`: every tensor multiplied by [`torch_coefficient`] (rounded
/// once to its dtype). PyTorch multiplies even when the coefficient is 1; `x · 1 = x`, so we
/// skip that write.
pub fn clip_grads_with_norm(tensors: &mut [TensorMut], max_norm: f64, total: f64) -> Result<()> {
    check_bound("maxNorm", max_norm)?;
    if total < 0.0 {
        return Err(Error::range(format!(
            "totalNorm: expected a norm (>= 0, NaN or Infinity), got {total}"
        )));
    }
    let coef = torch_coefficient(max_norm, total);
    scale_each(tensors, || coef as f32, || coef);
    Ok(())
}

/// PyTorch's `clip_grad_norm_(params, max_norm, norm_type, error_if_nonfinite)`: the total norm,
/// then [`clip_grads_with_norm`]. Returns the total norm. With `error_if_nonfinite`, a NaN or
/// infinite total is an error and nothing is written.
pub fn clip_grad_norm(
    tensors: &mut [TensorMut],
    max_norm: f64,
    p: NormType,
    error_if_nonfinite: bool,
) -> Result<f64> {
    check_bound("maxNorm", max_norm)?;
    let refs: Vec<TensorRef> = tensors.iter().map(TensorMut::as_ref).collect();
    let total = total_norm(&refs, p, error_if_nonfinite)?;
    clip_grads_with_norm(tensors, max_norm, total)?;
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Per-example clipping (DP-SGD)

/// Whose per-example clip factor to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerExampleStyle {
    /// Opacus: `min(1, C / (n + 1e-6))`; a NaN norm gives a NaN factor.
    Opacus,
    /// Optax `per_example_global_norm_clip`: `nan_to_num(min(C / n, 1), nan = 1)`.
    Optax,
    /// TF Privacy: `tf.clip_by_global_norm` of each example ([`tf_global_scale`]); a NaN or
    /// infinite norm gives NaN.
    TfPrivacy,
}

impl PerExampleStyle {
    pub fn parse(name: &str) -> Result<PerExampleStyle> {
        match name {
            "opacus" => Ok(PerExampleStyle::Opacus),
            "optax" => Ok(PerExampleStyle::Optax),
            "tfPrivacy" => Ok(PerExampleStyle::TfPrivacy),
            other => Err(Error::range(format!(
                "style: expected 'opacus', 'optax' or 'tfPrivacy', got {other:?}"
            ))),
        }
    }

    /// The factor of one example with norm `n` and bound `c`, in the element type `T` as the
    /// library computes it (all three run in the gradients' dtype).
    pub fn factor<T: Element>(self, n: f64, c: f64) -> T {
        match self {
            PerExampleStyle::Opacus => {
                let f = T::from_f64(c) / (T::from_f64(n) + T::from_f64(TORCH_EPSILON));
                if f.is_nan() || f < T::ONE {
                    f
                } else {
                    T::ONE
                }
            }
            PerExampleStyle::Optax => {
                let f = T::from_f64(c) / T::from_f64(n);
                if f.is_nan() {
                    T::ONE
                } else if f < T::ONE {
                    f
                } else {
                    T::ONE
                }
            }
            PerExampleStyle::TfPrivacy => tf_global_scale::<T>(n, c),
        }
    }
}

/// The clip bound of per-example clipping: one for the whole example (flat clipping), or one per
/// tensor (per-layer clipping: each tensor of each example is clipped to its own bound).
#[derive(Debug, Clone, PartialEq)]
pub enum Bounds {
    Flat(f64),
    PerLayer(Vec<f64>),
}

/// Per-example clipping for DP-SGD: `grads[t]` holds `batch` examples (a leading batch axis,
/// example i at `[i · r_t, (i + 1) · r_t)`); each example is scaled by its style's factor and the
/// scaled examples are summed into `out[t]` (length `r_t`), which is what the DP optimizer adds
/// noise to. Returns how many examples had a factor below 1 (one count, or one per tensor for
/// per-layer bounds). The sums are accumulated in f64 and rounded once.
pub fn clip_per_example(
    grads: &[TensorRef],
    batch: usize,
    bounds: &Bounds,
    style: PerExampleStyle,
    out: &mut [TensorMut],
) -> Result<Vec<usize>> {
    if grads.len() != out.len() {
        return Err(Error::range(format!(
            "out: expected one output per gradient ({}), got {}",
            grads.len(),
            out.len()
        )));
    }
    match bounds {
        Bounds::Flat(c) => check_bound("clipNorm", *c)?,
        Bounds::PerLayer(list) => {
            if list.len() != grads.len() {
                return Err(Error::range(format!(
                    "clipNorm: expected one bound per gradient tensor ({}), got {}",
                    grads.len(),
                    list.len()
                )));
            }
            for (t, &c) in list.iter().enumerate() {
                check_bound(&format!("clipNorm[{t}]"), c)?;
            }
        }
    }
    for (t, (g, o)) in grads.iter().zip(out.iter()).enumerate() {
        let per_example = g.len().checked_div(batch).unwrap_or(0);
        if batch == 0 && !g.is_empty() || per_example.checked_mul(batch) != Some(g.len()) {
            return Err(Error::range(format!(
                "grads[{t}]: expected a length that is a multiple of the batch size {batch}, got {}",
                g.len()
            )));
        }
        if o.len() != per_example {
            return Err(Error::range(format!(
                "out[{t}]: expected length {per_example} (one example of grads[{t}]), got {}",
                o.len()
            )));
        }
        if matches!(
            (g, o),
            (TensorRef::F32(_), TensorMut::F64(_)) | (TensorRef::F64(_), TensorMut::F32(_))
        ) {
            return Err(Error::type_error(format!(
                "out[{t}]: expected the element type of grads[{t}]"
            )));
        }
    }
    // When every tensor is empty, the `batch` examples are one and the same empty example (the
    // batch size is then bounded by nothing: 2^32 - 1 examples of zero elements): it is
    // computed once and counted `batch` times. Otherwise `batch` is at most the elements read.
    let all_empty = grads.iter().all(TensorRef::is_empty);
    let examples = if all_empty { batch.min(1) } else { batch };
    // Norm pass: per example and tensor.
    let mut norms = vec![0.0f64; examples * grads.len()]; // [example][tensor]
    for (t, g) in grads.iter().enumerate() {
        let per_example = g.len().checked_div(batch).unwrap_or(0);
        with_data!(*g, |data, k| {
            for i in 0..examples {
                let example = &data[i * per_example..(i + 1) * per_example];
                norms[i * grads.len() + t] = reduce::norm(example, NormType::L2, k);
            }
        });
    }
    let tensors = grads.len();
    let mut clipped = match bounds {
        Bounds::Flat(_) => vec![0usize; 1],
        Bounds::PerLayer(_) => vec![0usize; tensors],
    };
    // factors[example][tensor] in f64 (each the exact value of the element-type factor).
    let mut factors = vec![0.0f64; examples * tensors];
    for i in 0..examples {
        let row = &norms[i * tensors..(i + 1) * tensors];
        match bounds {
            Bounds::Flat(c) => {
                let n = reduce::combine(row, NormType::L2);
                for t in 0..tensors {
                    factors[i * tensors + t] = factor_for(grads[t], style, n, *c);
                }
                // Every tensor's factor is < 1 together (and with no tensors, none is).
                if tensors > 0 && factors[i * tensors] < 1.0 {
                    clipped[0] += 1;
                }
            }
            Bounds::PerLayer(list) => {
                for t in 0..tensors {
                    let f = factor_for(grads[t], style, row[t], list[t]);
                    factors[i * tensors + t] = f;
                    if f < 1.0 {
                        clipped[t] += 1;
                    }
                }
            }
        }
    }
    if all_empty {
        // Each count is 0 or 1 for the one example computed: the same for all `batch` of them.
        clipped.iter_mut().for_each(|count| *count *= batch);
    }
    // Sum pass: out[t][j] = Σ_i f_it · g_t[i, j], accumulated in f64 over cache-sized chunks.
    const CHUNK: usize = 2048;
    let mut acc = vec![0.0f64; CHUNK];
    for (t, (g, o)) in grads.iter().zip(out.iter_mut()).enumerate() {
        let per_example = o.len();
        let mut start = 0;
        while start < per_example {
            let end = (start + CHUNK).min(per_example);
            let acc = &mut acc[..end - start];
            acc.fill(0.0);
            for i in 0..batch {
                let f = factors[i * tensors + t];
                let from = i * per_example;
                match g {
                    TensorRef::F32(d) => (Kernels::<f32>::active().weighted_add)(
                        acc,
                        &d[from + start..from + end],
                        f,
                    ),
                    TensorRef::F64(d) => (Kernels::<f64>::active().weighted_add)(
                        acc,
                        &d[from + start..from + end],
                        f,
                    ),
                }
            }
            match o {
                TensorMut::F32(d) => {
                    for (x, &a) in d[start..end].iter_mut().zip(acc.iter()) {
                        *x = a as f32;
                    }
                }
                TensorMut::F64(d) => d[start..end].copy_from_slice(acc),
            }
            start = end;
        }
    }
    Ok(clipped)
}

fn factor_for(g: TensorRef, style: PerExampleStyle, n: f64, c: f64) -> f64 {
    match g {
        TensorRef::F32(_) => style.factor::<f32>(n, c) as f64,
        TensorRef::F64(_) => style.factor::<f64>(n, c),
    }
}

// ---------------------------------------------------------------------------------------------
// Federated update clipping

/// What [`clip_update`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateClip {
    /// The L2 norm of the whole update (all tensors) before clipping.
    pub norm: f64,
    /// Whether it was scaled (norm > clip norm).
    pub clipped: bool,
}

/// Federated update clipping (Flower's `min(1, C / ‖Δ‖)`, TFF's clipping factory): when the
/// update's norm exceeds `clip_norm`, every tensor is multiplied by `C / ‖Δ‖` (in f64, rounded
/// once to each dtype). A zero update is left as it is (Flower divides by zero there); a NaN norm
/// is not clipped (as in TFF: NaN > C is false), an infinite one scales by 0.
pub fn clip_update(deltas: &mut [TensorMut], clip_norm: f64) -> Result<UpdateClip> {
    check_bound("clipNorm", clip_norm)?;
    let norm = global_norm(&deltas.iter().map(TensorMut::as_ref).collect::<Vec<_>>())?;
    let clipped = norm > clip_norm;
    if clipped {
        let factor = clip_norm / norm;
        scale_each(deltas, || factor as f32, || factor);
    }
    Ok(UpdateClip { norm, clipped })
}
