"""MS-SSIM and SSIM (inrcodec.metrics) against known properties and scikit-image."""
import numpy as np
import pytest
from skimage import data
from skimage.metrics import structural_similarity

from inrcodec.metrics import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_min_side, psnr, ssim


@pytest.fixture(scope="module")
def photo():
    return np.ascontiguousarray(data.astronaut()[100:292, 150:342])  # 192x192 RGB


def noisy(img, sd, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(img + rng.normal(0, sd, img.shape)), 0, 255).astype(np.uint8)


def test_identical_is_one(photo):
    assert ms_ssim(photo, photo) == 1.0
    assert ssim(photo, photo) == 1.0


def test_decreases_with_noise(photo):
    vals = [ms_ssim(photo, noisy(photo, sd)) for sd in (1, 4, 16, 64)]
    assert all(0 <= v < 1 for v in vals)
    assert vals == sorted(vals, reverse=True) and vals[0] > 0.99 and vals[-1] < 0.8


def test_symmetric(photo):
    b = noisy(photo, 10)
    assert ms_ssim(photo, b) == pytest.approx(ms_ssim(b, photo), abs=1e-12)


def test_single_scale_matches_scikit_image(photo):
    # An independent implementation: Gaussian window sigma 1.5, population statistics.
    for sd in (3, 20):
        b = noisy(photo, sd)
        ref = structural_similarity(photo, b, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=255, channel_axis=2)
        assert ssim(photo, b) == pytest.approx(ref, abs=1e-6)
        assert ms_ssim(photo, b, weights=(1.0,)) == pytest.approx(ref, abs=1e-6)


def test_standard_weights_and_size_limit(photo):
    assert MS_SSIM_WEIGHTS == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    assert ms_ssim_min_side() == 176
    small = photo[:175, :175]
    with pytest.raises(ValueError, match="176"):
        ms_ssim(small, small)
    with pytest.raises(ValueError, match="shape"):
        ms_ssim(photo, photo[:180])


def test_greyscale_and_channels(photo):
    grey = photo[:, :, 0]
    b = noisy(grey, 8)
    assert ms_ssim(grey, b) == pytest.approx(ms_ssim(grey[:, :, None], b[:, :, None]))
    # colour: the mean of the per-channel values
    c = noisy(photo, 8)
    per = [ms_ssim(photo[:, :, i], c[:, :, i]) for i in range(3)]
    assert ms_ssim(photo, c) == pytest.approx(np.mean(per), abs=1e-12)


def test_coarse_scales_dominate_blur_less_than_noise(photo):
    # a small blur keeps coarse structure; noise of the same PSNR is judged worse by SSIM-type
    # measures at fine scales, but MS-SSIM weighs the coarse scales more heavily
    from scipy.ndimage import gaussian_filter

    blur = np.clip(np.round(gaussian_filter(photo.astype(float), (1.0, 1.0, 0))), 0, 255
                   ).astype(np.uint8)
    assert ms_ssim(photo, blur) > ssim(photo, blur)


def test_psnr_known_value():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 255  # MSE = 255^2 / 48
    assert psnr(a, b) == pytest.approx(10 * np.log10(48))
