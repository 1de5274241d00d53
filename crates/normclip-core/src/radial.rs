//! tf-keras 2.x `RadialConstraint`, as its code computes it (its docstring says something else).
//!
//! For a kernel `[h, h, channels, filters]` every 2-D `h × h` slice is rebuilt ring by ring from
//! values on its own diagonal, with `start = h / 2`:
//! - odd `h`: the centre takes `k[start-1, start-1]`; ring `d >= 1` takes `k[start+d-1, start+d-1]`
//!   (the docstring promises the centre value everywhere; the code reads one step off the centre);
//! - even `h`: the 2×2 core takes `k[start-1, start-1]`; ring `d >= 1` takes `k[start+d, start+d]`.
//!
//! tf-keras fails on `h = 1` (an empty slice), on non-square and on non-rank-4 kernels; so do we,
//! with a clear error.

use crate::element::Element;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadialPlan {
    size: usize,
    /// channels × filters: the contiguous run behind each (row, column) position.
    depth: usize,
}

impl RadialPlan {
    pub fn new(shape: &[usize]) -> Result<RadialPlan> {
        let &[height, width, channels, filters] = shape else {
            return Err(Error::range(format!(
                "shape: RadialConstraint expects a rank-4 kernel [height, width, channels, filters], got {shape:?}"
            )));
        };
        if height != width {
            return Err(Error::range(format!(
                "shape: RadialConstraint expects a square kernel (height == width), got {shape:?}"
            )));
        }
        if height < 2 {
            return Err(Error::range(format!(
                "shape: RadialConstraint expects a kernel of at least 2×2 (tf-keras fails on 1×1), got {shape:?}"
            )));
        }
        Ok(RadialPlan {
            size: height,
            depth: channels * filters,
        })
    }

    fn ring(&self, position: usize) -> usize {
        let start = self.size / 2;
        if self.size % 2 == 1 {
            position.abs_diff(start)
        } else if position >= start {
            position - start
        } else {
            start - 1 - position
        }
    }

    fn source_diagonal(&self, ring: usize) -> usize {
        let start = self.size / 2;
        match (self.size % 2 == 1, ring) {
            (_, 0) => start - 1,
            (true, d) => start + d - 1,
            (false, d) => start + d,
        }
    }

    pub fn apply<T: Element>(&self, data: &mut [T]) {
        let (size, depth) = (self.size, self.depth);
        if depth == 0 {
            return;
        }
        let rings = self.ring(0) + 1;
        // The sources sit on the diagonal, which is overwritten too: read them all first.
        let mut sources = Vec::with_capacity(rings * depth);
        for ring in 0..rings {
            let diagonal = self.source_diagonal(ring);
            let at = (diagonal * size + diagonal) * depth;
            sources.extend_from_slice(&data[at..at + depth]);
        }
        for (position, run) in data.chunks_exact_mut(depth).enumerate() {
            let ring = self.ring(position / size).max(self.ring(position % size));
            run.copy_from_slice(&sources[ring * depth..(ring + 1) * depth]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn radial(size: usize) -> Vec<f32> {
        let mut kernel: Vec<f32> = (0..size * size).map(|i| i as f32).collect();
        RadialPlan::new(&[size, size, 1, 1])
            .unwrap()
            .apply(&mut kernel);
        kernel
    }

    #[test]
    fn odd_kernel_reads_one_step_off_centre() {
        // 3×3: k[0,0] = 0 in the centre, the ring from k[1,1] = 4.
        assert_eq!(radial(3), vec![4., 4., 4., 4., 0., 4., 4., 4., 4.]);
    }

    #[test]
    fn even_kernel_core_and_rings() {
        // 4×4: core from k[1,1] = 5, outer ring from k[3,3] = 15.
        let k = radial(4);
        assert_eq!(&k[0..4], &[15., 15., 15., 15.]);
        assert_eq!(&k[4..8], &[15., 5., 5., 15.]);
        assert_eq!(radial(2), vec![0.; 4]);
    }

    #[test]
    fn bad_shapes_are_rejected() {
        assert!(RadialPlan::new(&[3, 3, 2]).is_err());
        assert!(RadialPlan::new(&[3, 4, 1, 1]).is_err());
        assert!(RadialPlan::new(&[1, 1, 1, 1]).is_err());
    }
}
