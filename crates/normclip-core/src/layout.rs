//! Shape and axis validation, and the plan of a walk over memory.
//!
//! Any axis set reduces to one of two inner patterns once size-1 axes are dropped and adjacent axes
//! of the same role (reduced or kept) are merged:
//! - the last merged axis is kept ([`Inner::Columns`]): rows stream past and every column sum is
//!   accumulated at once (vertical SIMD) — Keras' default axis 0, a Conv kernel's `[0, 1, 2]`;
//! - the last merged axis is reduced ([`Inner::Runs`]): each slice is made of contiguous runs that
//!   are summed horizontally — `axis = -1`, `axis = null`.
//!
//! What is left in front of those two inner axes are the *outer* axes; each position of them is one
//! contiguous *group* of memory, and groups are walked in memory order.

use crate::error::{Error, Result};

/// Which axes a norm is taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Axes {
    /// Every axis: one norm for the whole tensor (Keras `axis=None`).
    All,
    /// These axes (numpy style: negatives count from the end). `[]` reduces nothing: each element
    /// is its own slice.
    List(Vec<i64>),
}

impl Default for Axes {
    /// Keras' default, `axis=0`: one norm per output unit of a Dense kernel `[in, units]`.
    fn default() -> Self {
        Axes::List(vec![0])
    }
}

impl Axes {
    /// The reduced axes of a tensor of `rank` dimensions as a bit set (bit `i` = axis `i`);
    /// rejects out-of-range and repeated axes.
    pub fn reduced_mask(&self, rank: usize) -> Result<u128> {
        if rank > MAX_RANK {
            return Err(Error::range(format!(
                "shape: expected at most {MAX_RANK} dimensions, got {rank}"
            )));
        }
        let list = match self {
            Axes::All => {
                return Ok(if rank == 0 {
                    0
                } else {
                    u128::MAX >> (MAX_RANK - rank)
                })
            }
            Axes::List(list) => list,
        };
        let mut mask = 0u128;
        for (position, &axis) in list.iter().enumerate() {
            let rank_i = rank as i64;
            if axis < -rank_i || axis >= rank_i {
                return Err(Error::range(if rank == 0 {
                    format!("axis: a rank-0 tensor has no axes, got {axis} at index {position}")
                } else {
                    format!(
                        "axis: expected integers in [{}, {}] for a rank-{rank} tensor, got {axis} at index {position}",
                        -rank_i,
                        rank_i - 1
                    )
                }));
            }
            let resolved = axis.rem_euclid(rank_i) as u32;
            if mask & (1 << resolved) != 0 {
                return Err(Error::range(format!(
                    "axis: expected distinct axes, got axis {resolved} twice ({list:?})"
                )));
            }
            mask |= 1 << resolved;
        }
        Ok(mask)
    }
}

/// The largest rank a tensor may have, for the core and every binding (the Node binding exports
/// it as `MAX_RANK` and checks shapes and axis lists against it while reading them, before any
/// allocation sized by them). 128 because a plan keeps its reduced axes as a `u128` bit set;
/// Keras and tfjs weights stop far below.
pub const MAX_RANK: usize = 128;

/// The keepdims shape of the norms of a tensor of `shape` reduced over `mask`.
pub fn norms_shape(shape: &[usize], mask: u128) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &dim)| if mask >> i & 1 == 1 { 1 } else { dim })
        .collect()
}

/// Number of elements of `shape`, or an error if it overflows.
pub fn element_count(shape: &[usize]) -> Result<usize> {
    // A zero anywhere makes the product zero, whatever the other dimensions multiply to.
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |count, &dim| count.checked_mul(dim))
        .ok_or_else(|| {
            Error::range(format!(
                "shape: the product of {shape:?} overflows the address space"
            ))
        })
}

/// Checks that a buffer of `len` elements can hold a tensor of `shape`.
pub fn check_length(len: usize, shape: &[usize]) -> Result<usize> {
    let expected = element_count(shape)?;
    if expected != len {
        return Err(Error::range(format!(
            "array: expected length {expected} (the product of shape {shape:?}), got {len}"
        )));
    }
    Ok(expected)
}

/// The two innermost merged axes, which decide the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner {
    /// Last axis kept: a group is `rows × cols`, each column a part of slice `base + column`.
    Columns { rows: usize, cols: usize },
    /// Last axis reduced: a group is `runs × run_len`, run `j` a part of slice `base + j`.
    Runs { runs: usize, run_len: usize },
}

/// How one tensor is walked: groups of contiguous memory, each feeding a contiguous range of slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub len: usize,
    pub inner: Inner,
    /// Outer merged axes, outermost first: (size, reduced).
    outer: Vec<(usize, bool)>,
    /// Number of slices (= number of norms).
    pub slices: usize,
    /// Elements per slice.
    pub slice_len: usize,
    /// The reduced axes, bit `i` for axis `i`.
    pub reduced: u128,
}

impl Plan {
    pub fn new(shape: &[usize], axes: &Axes) -> Result<Plan> {
        let len = element_count(shape)?;
        let reduced = axes.reduced_mask(shape.len())?;
        // At most the element count, except for an empty tensor, whose other dimensions may
        // multiply past the address space ([0, 2^40, 2^40] over axis 0): its norms cannot exist.
        // The product of the kept dimensions (what `element_count(&norms_shape(..))` gives),
        // without building the norms' shape: a small call pays no allocation for it.
        let kept = || {
            shape
                .iter()
                .enumerate()
                .filter(move |&(i, _)| reduced >> i & 1 == 0)
                .map(|(_, &dim)| dim)
        };
        let slices = if kept().any(|dim| dim == 0) {
            Some(0)
        } else {
            kept().try_fold(1usize, |count, dim| count.checked_mul(dim))
        }
        .ok_or_else(|| {
            Error::range(format!(
                "shape: the norms of an empty tensor of shape {shape:?} would be {:?}, more values than fit in memory",
                norms_shape(shape, reduced)
            ))
        })?;
        let slice_len = len.checked_div(slices).unwrap_or(0);
        if len == 0 {
            // Nothing to walk: no groups, and no merging (products of the other dimensions may
            // overflow).
            return Ok(Plan {
                len,
                inner: Inner::Runs {
                    runs: 1,
                    run_len: 0,
                },
                outer: Vec::new(),
                slices,
                slice_len,
                reduced,
            });
        }

        // Merge on the stack for the usual ranks: most tensors end up with no outer axes, so
        // `outer` never allocates.
        let mut on_stack = [(0usize, false); 16];
        let mut on_heap = Vec::new();
        let merged: &mut [(usize, bool)] = if shape.len() <= on_stack.len() {
            &mut on_stack
        } else {
            on_heap.resize(shape.len(), (0, false));
            &mut on_heap
        };
        let mut count = 0;
        for (i, &dim) in shape.iter().enumerate() {
            let r = reduced >> i & 1 == 1;
            if dim == 1 {
                continue;
            }
            if count > 0 && merged[count - 1].1 == r {
                merged[count - 1].0 *= dim;
            } else {
                merged[count] = (dim, r);
                count += 1;
            }
        }
        let mut merged = &merged[..count];
        let mut pop = || {
            let (last, rest) = merged.split_last()?;
            merged = rest;
            Some(*last)
        };
        let inner = match pop() {
            None => Inner::Runs {
                runs: 1,
                run_len: 1,
            },
            Some((cols, false)) => match pop() {
                Some((rows, true)) => Inner::Columns { rows, cols },
                Some(kept) => unreachable!("adjacent kept axes were merged: {kept:?}"),
                None => Inner::Columns { rows: 1, cols },
            },
            Some((run_len, true)) => match pop() {
                Some((runs, false)) => Inner::Runs { runs, run_len },
                Some(other) => unreachable!("adjacent reduced axes were merged: {other:?}"),
                None => Inner::Runs { runs: 1, run_len },
            },
        };
        let outer = merged.to_vec();
        Ok(Plan {
            len,
            inner,
            outer,
            slices,
            slice_len,
            reduced,
        })
    }

    /// Elements in one group.
    pub fn group_len(&self) -> usize {
        match self.inner {
            Inner::Columns { rows, cols } => rows * cols,
            Inner::Runs { runs, run_len } => runs * run_len,
        }
    }

    /// Slices fed by one group (they are contiguous: `base .. base + slices_per_group`).
    pub fn slices_per_group(&self) -> usize {
        match self.inner {
            Inner::Columns { cols, .. } => cols,
            Inner::Runs { runs, .. } => runs,
        }
    }

    pub fn groups(&self) -> usize {
        if self.len == 0 {
            0
        } else {
            self.len / self.group_len()
        }
    }

    /// Slices per band when the slices are independent stretches of memory, one after the other
    /// (each slice one contiguous run: `axis = -1`, or any set of trailing axes) and the tensor
    /// is larger than a band of `band_elements`: the number of whole slices a band holds.
    /// `None` when the slices interleave (columns), span groups, or are longer than a band.
    pub fn slices_per_band(&self, band_elements: usize) -> Option<usize> {
        match self.inner {
            Inner::Runs { run_len, .. }
                if run_len == self.slice_len
                    && self.outer.is_empty()
                    && self.len > band_elements
                    && run_len <= band_elements =>
            {
                Some(band_elements / run_len)
            }
            _ => None,
        }
    }

    /// The plan of the first `slices` slices of a plan whose slices are contiguous runs (see
    /// [`Plan::slices_per_band`]): a band is walked as a tensor of its own.
    pub fn band(&self, slices: usize) -> Plan {
        debug_assert!(self.outer.is_empty() && slices <= self.slices);
        Plan {
            len: slices * self.slice_len,
            inner: Inner::Runs {
                runs: slices,
                run_len: self.slice_len,
            },
            outer: Vec::new(),
            slices,
            slice_len: self.slice_len,
            reduced: self.reduced,
        }
    }

    /// The checks a call on an empty tensor still makes (its axes), without a plan: nothing is
    /// walked, and its other dimensions may multiply past the address space.
    pub fn check_axes(shape: &[usize], axes: &Axes) -> Result<()> {
        axes.reduced_mask(shape.len()).map(|_| ())
    }

    /// First slice fed by group `group` (groups are numbered in memory order).
    pub fn group_base(&self, mut group: usize) -> usize {
        let mut kept_index = 0;
        let mut kept_stride = 1;
        for &(size, reduced) in self.outer.iter().rev() {
            let position = group % size;
            group /= size;
            if !reduced {
                kept_index += position * kept_stride;
                kept_stride *= size;
            }
        }
        kept_index * self.slices_per_group()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(shape: &[usize], axes: &[i64]) -> Plan {
        Plan::new(shape, &Axes::List(axes.to_vec())).unwrap()
    }

    #[test]
    fn dense_axis0_streams_columns() {
        let p = plan(&[784, 512], &[0]);
        assert_eq!(
            p.inner,
            Inner::Columns {
                rows: 784,
                cols: 512
            }
        );
        assert_eq!((p.slices, p.slice_len, p.groups()), (512, 784, 1));
        assert_eq!(norms_shape(&[784, 512], p.reduced), vec![1, 512]);
    }

    #[test]
    fn conv_kernel_merges_leading_axes() {
        let p = plan(&[3, 3, 256, 64], &[0, 1, 2]);
        assert_eq!(
            p.inner,
            Inner::Columns {
                rows: 2304,
                cols: 64
            }
        );
        assert_eq!(norms_shape(&[3, 3, 256, 64], p.reduced), vec![1, 1, 1, 64]);
    }

    #[test]
    fn last_axis_is_runs() {
        let p = plan(&[4096, 100], &[-1]);
        assert_eq!(
            p.inner,
            Inner::Runs {
                runs: 4096,
                run_len: 100
            }
        );
        let whole = Plan::new(&[4, 5, 6], &Axes::All).unwrap();
        assert_eq!(
            whole.inner,
            Inner::Runs {
                runs: 1,
                run_len: 120
            }
        );
        assert_eq!(norms_shape(&[4, 5, 6], whole.reduced), vec![1, 1, 1]);
    }

    #[test]
    fn empty_axes_reduce_nothing() {
        let p = plan(&[3, 4], &[]);
        assert_eq!(p.inner, Inner::Columns { rows: 1, cols: 12 });
        assert_eq!((p.slices, p.slice_len), (12, 1));
    }

    #[test]
    fn non_contiguous_axes_use_outer_groups() {
        // [a, b, c, d] reduce [0, 2]: outer (a: reduced, b: kept), inner Columns {c, d}.
        let p = plan(&[2, 3, 4, 5], &[0, 2]);
        assert_eq!(p.inner, Inner::Columns { rows: 4, cols: 5 });
        assert_eq!(p.groups(), 6);
        // group = a * 3 + b; base = b * 5.
        let bases: Vec<usize> = (0..6).map(|g| p.group_base(g)).collect();
        assert_eq!(bases, vec![0, 5, 10, 0, 5, 10]);
        assert_eq!(norms_shape(&[2, 3, 4, 5], p.reduced), vec![1, 3, 1, 5]);
    }

    #[test]
    fn size_one_axes_vanish() {
        let p = plan(&[1, 7, 1], &[1]);
        assert_eq!(
            p.inner,
            Inner::Runs {
                runs: 1,
                run_len: 7
            }
        );
        let scalar = Plan::new(&[], &Axes::All).unwrap();
        assert_eq!((scalar.len, scalar.slices), (1, 1));
    }

    #[test]
    fn bad_axes_are_rejected_with_their_value() {
        let err = Plan::new(&[2, 3], &Axes::List(vec![2])).unwrap_err();
        assert!(
            err.message.contains("[-2, 1]") && err.message.contains("got 2"),
            "{}",
            err.message
        );
        let err = Plan::new(&[2, 3], &Axes::List(vec![1, -1])).unwrap_err();
        assert!(err.message.contains("twice"), "{}", err.message);
        let err = Plan::new(&[], &Axes::List(vec![0])).unwrap_err();
        assert!(err.message.contains("rank-0"), "{}", err.message);
    }

    #[test]
    fn empty_tensors_with_huge_dimensions_plan_without_overflow() {
        let p = plan(&[0, 1 << 40, 1 << 40], &[0, 1]);
        assert_eq!((p.len, p.groups(), p.slices), (0, 0, 1 << 40));
        let err = Plan::new(&[0, 1 << 40, 1 << 40], &Axes::List(vec![0])).unwrap_err();
        assert!(
            err.message.contains("more values than fit"),
            "{}",
            err.message
        );
        assert!(Plan::new(&[1 << 40, 1 << 40, 0], &Axes::All).is_ok());
        // A zero among the kept dimensions: no norms at all, whatever the others multiply to.
        let p = plan(&[0, 1 << 40, 1 << 40, 0], &[0]);
        assert_eq!(p.slices, 0);
    }

    #[test]
    fn zero_sized_tensors_have_no_groups() {
        let p = plan(&[0, 4], &[0]);
        assert_eq!((p.len, p.groups(), p.slices), (0, 0, 4));
        let p = plan(&[4, 0], &[0]);
        assert_eq!((p.len, p.slices), (0, 0));
    }
}
