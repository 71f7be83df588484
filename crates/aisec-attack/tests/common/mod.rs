//! A small differentiable test model with hand-written gradients.

#![allow(clippy::needless_range_loop)]

use aisec_model::{Classifier, Differentiable, Loss, ModelError, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `z = W h + b` with `h = x` (linear) or `h = [relu(x), relu(-x)]`
/// recombined as `relu(x) - relu(-x)` (a ReLU network computing the same
/// linear function, to exercise the ReLU backward pass).
pub struct Net {
    pub w: Vec<Vec<f32>>,
    pub b: Vec<f32>,
    pub relu: bool,
    pub shape: Vec<usize>,
}

pub const D: usize = 16;
pub const C: usize = 10;

/// Class means and a nearest-mean linear classifier over [1,4,4] inputs.
pub fn setup(relu: bool, n: usize, seed: u64) -> (Net, Tensor, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let means: Vec<Vec<f32>> = (0..C)
        .map(|_| (0..D).map(|_| rng.gen_range(0.2f32..0.8)).collect())
        .collect();
    let scale = 8.0;
    let w: Vec<Vec<f32>> = means
        .iter()
        .map(|m| m.iter().map(|v| 2.0 * scale * v).collect())
        .collect();
    let b: Vec<f32> = means
        .iter()
        .map(|m| -scale * m.iter().map(|v| v * v).sum::<f32>())
        .collect();
    let mut data = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = i % C;
        y.push(c);
        for j in 0..D {
            let noise = (rng.gen_range(-1.0f32..1.0) + rng.gen_range(-1.0f32..1.0)) * 0.03;
            data.push((means[c][j] + noise).clamp(0.0, 1.0));
        }
    }
    let net = Net {
        w,
        b,
        relu,
        shape: vec![1, 4, 4],
    };
    (net, Tensor::new(vec![n, 1, 4, 4], data).unwrap(), y)
}

impl Net {
    fn forward_row(&self, x: &[f32]) -> Vec<f32> {
        let h: Vec<f32> = if self.relu {
            x.iter().map(|v| v.max(0.0) - (-v).max(0.0)).collect()
        } else {
            x.to_vec()
        };
        self.w
            .iter()
            .zip(&self.b)
            .map(|(wr, b)| wr.iter().zip(&h).map(|(a, c)| a * c).sum::<f32>() + b)
            .collect()
    }

    fn backward_row(&self, x: &[f32], dz: &[f32]) -> Vec<f32> {
        let mut dh = vec![0.0f32; x.len()];
        for (wr, d) in self.w.iter().zip(dz) {
            for (o, a) in dh.iter_mut().zip(wr) {
                *o += a * d;
            }
        }
        if self.relu {
            // d/dx [relu(x) - relu(-x)] = 1[x>0] + 1[x<0]
            for (o, v) in dh.iter_mut().zip(x) {
                if *v == 0.0 {
                    *o = 0.0;
                }
            }
        }
        dh
    }
}

fn sorted_desc(z: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..z.len()).collect();
    idx.sort_by(|&a, &b| z[b].partial_cmp(&z[a]).unwrap());
    idx
}

fn best_other(z: &[f32], y: usize) -> usize {
    (0..z.len())
        .filter(|&i| i != y)
        .max_by(|&a, &b| z[a].partial_cmp(&z[b]).unwrap())
        .unwrap()
}

/// Loss value and its gradient with respect to the logits.
pub fn loss_and_dz(z: &[f32], loss: &Loss, i: usize) -> (f32, Vec<f32>) {
    let mut dz = vec![0.0f32; z.len()];
    match loss {
        Loss::CrossEntropy { labels } => {
            let y = labels[i];
            let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f32 = e.iter().sum();
            for k in 0..z.len() {
                dz[k] = e[k] / s;
            }
            dz[y] -= 1.0;
            (-(z[y] - m - s.ln()), dz)
        }
        Loss::Dlr { labels } => {
            let y = labels[i];
            let p = sorted_desc(z);
            let o = best_other(z, y);
            let num = z[y] - z[o];
            let den = z[p[0]] - z[p[2]] + 1e-12;
            dz[y] -= 1.0 / den;
            dz[o] += 1.0 / den;
            dz[p[0]] += num / (den * den);
            dz[p[2]] -= num / (den * den);
            (-num / den, dz)
        }
        Loss::DlrTargeted { labels, targets } => {
            let (y, t) = (labels[i], targets[i]);
            let p = sorted_desc(z);
            let num = z[y] - z[t];
            let den = z[p[0]] - (z[p[2]] + z[p[3]]) / 2.0 + 1e-12;
            dz[y] -= 1.0 / den;
            dz[t] += 1.0 / den;
            dz[p[0]] += num / (den * den);
            dz[p[2]] -= num / (2.0 * den * den);
            dz[p[3]] -= num / (2.0 * den * den);
            (-num / den, dz)
        }
        Loss::CwMargin { labels, kappa } => {
            let y = labels[i];
            let o = best_other(z, y);
            let m = z[y] - z[o];
            if m > -kappa {
                dz[y] = 1.0;
                dz[o] = -1.0;
            }
            (m.max(-kappa), dz)
        }
        Loss::Logit { classes } => {
            dz[classes[i]] = 1.0;
            (z[classes[i]], dz)
        }
        Loss::SoftCrossEntropy { targets } => {
            let c = z.len();
            let q = &targets[i * c..(i + 1) * c];
            let m = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
            for k in 0..c {
                dz[k] = (z[k] - lse).exp() - q[k];
            }
            (q.iter().zip(z).map(|(qk, zk)| qk * (lse - zk)).sum(), dz)
        }
    }
}

impl Classifier for Net {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }
    fn num_classes(&self) -> usize {
        C
    }
    fn logits(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let n = x.batch();
        let mut data = Vec::with_capacity(n * C);
        for i in 0..n {
            data.extend(self.forward_row(x.row(i)));
        }
        Tensor::new(vec![n, C], data)
    }
}

impl Differentiable for Net {
    fn loss_grad(&self, x: &Tensor, loss: &Loss) -> Result<(Vec<f32>, Tensor, Tensor), ModelError> {
        let z = self.logits(x)?;
        let mut g = Tensor::zeros(x.shape.clone());
        let mut ls = Vec::new();
        for i in 0..x.batch() {
            let (l, dz) = loss_and_dz(z.row(i), loss, i);
            ls.push(l);
            g.row_mut(i)
                .copy_from_slice(&self.backward_row(x.row(i), &dz));
        }
        Ok((ls, g, z))
    }
}
