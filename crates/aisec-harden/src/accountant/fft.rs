//! A small iterative radix-2 complex FFT (Cooley & Tukey 1965), enough for
//! the PLD accountant's self-composition of a privacy-loss distribution.

/// A complex number as (re, im).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct C64 {
    pub(crate) re: f64,
    pub(crate) im: f64,
}

impl C64 {
    pub(crate) fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }
    fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
    /// self^n by polar form (|z|^n, n arg z): one exp/ln per point, and no
    /// error growth with n beyond the rounding of arg z times n.
    pub(crate) fn powi(self, n: u64) -> Self {
        let r = self.re.hypot(self.im);
        if r == 0.0 {
            return Self::default();
        }
        let theta = self.im.atan2(self.re);
        #[allow(clippy::cast_precision_loss)]
        let nf = n as f64;
        let rn = (nf * r.ln()).exp();
        let ang = (nf * theta).rem_euclid(2.0 * std::f64::consts::PI);
        Self::new(rn * ang.cos(), rn * ang.sin())
    }
}

/// In-place FFT of `a` (length a power of two). `inverse` computes the
/// unnormalised inverse transform (divide by the length afterwards).
pub(crate) fn fft(a: &mut [C64], inverse: bool) {
    let n = a.len();
    if n <= 1 {
        return;
    }
    debug_assert!(n.is_power_of_two());
    // Bit-reversal permutation.
    let mut j = 0usize;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            a.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        #[allow(clippy::cast_precision_loss)]
        let ang = sign * 2.0 * std::f64::consts::PI / len as f64;
        let half = len / 2;
        // Twiddles computed directly (not by repeated multiplication) to
        // keep the rounding error at O(eps log n).
        let tw: Vec<C64> = (0..half)
            .map(|k| {
                #[allow(clippy::cast_precision_loss)]
                let t = ang * k as f64;
                C64::new(t.cos(), t.sin())
            })
            .collect();
        for chunk in a.chunks_mut(len) {
            let (lo, hi) = chunk.split_at_mut(half);
            for k in 0..half {
                let u = lo[k];
                let v = hi[k].mul(tw[k]);
                lo[k] = u.add(v);
                hi[k] = u.sub(v);
            }
        }
        len <<= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circular_convolution_matches_direct() {
        let n = 16;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 * 0.1).collect();
        let y: Vec<f64> = (0..n).map(|i| ((i * 3) % 4) as f64 * 0.2).collect();
        let mut direct = vec![0.0; n];
        for i in 0..n {
            for j in 0..n {
                direct[(i + j) % n] += x[i] * y[j];
            }
        }
        let mut fx: Vec<C64> = x.iter().map(|&v| C64::new(v, 0.0)).collect();
        let mut fy: Vec<C64> = y.iter().map(|&v| C64::new(v, 0.0)).collect();
        fft(&mut fx, false);
        fft(&mut fy, false);
        let mut prod: Vec<C64> = fx.iter().zip(&fy).map(|(a, b)| a.mul(*b)).collect();
        fft(&mut prod, true);
        for i in 0..n {
            assert!((prod[i].re / n as f64 - direct[i]).abs() < 1e-12);
        }
        // powi agrees with repeated multiplication.
        let z = C64::new(0.3, -0.7);
        let p = z.powi(5);
        let mut q = C64::new(1.0, 0.0);
        for _ in 0..5 {
            q = q.mul(z);
        }
        assert!((p.re - q.re).abs() < 1e-14 && (p.im - q.im).abs() < 1e-14);
    }
}
