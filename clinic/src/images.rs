//! Uploaded pictures that are shown back scaled down: the organisation's logo (F3) and staff
//! profile photos (F24). The upload is checked like a widget image (declared type on the
//! allow-list and matching magic bytes, [`crate::widgets::image`]), then decoded with limits,
//! downscaled to fit a box and re-encoded, so what is stored and served is always a small image
//! we wrote ourselves (no metadata, no payload hidden after the image data).
//!
//! Invariant: decoding runs on the blocking pool with bounded dimensions and allocation; a file
//! that is not a valid image of its declared type is refused with a clear 422.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use crate::error::ApiError;
use crate::widgets::image::{allowed_type, sniff};

/// Largest accepted upload (a phone photo), in bytes.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// Largest accepted width or height of an upload, in pixels.
const MAX_SIDE: u32 = 8000;

/// Largest allocation while decoding (an 8000 × 4000 RGBA image).
const MAX_ALLOC: u64 = 128 * 1024 * 1024;

/// What the picture is for: its box and its stored format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Organisation logo, shown top left (F3: ideally 180 × 50; kept at twice that for sharp
    /// displays). PNG, so transparency survives.
    Logo,
    /// Staff profile photo: a 256 × 256 box, JPEG.
    Photo,
}

impl Purpose {
    fn fit(self) -> (u32, u32) {
        match self {
            Purpose::Logo => (360, 100),
            Purpose::Photo => (256, 256),
        }
    }
}

/// A picture ready to store: its content type and bytes.
#[derive(Clone, Debug)]
pub struct Processed {
    /// `image/png` or `image/jpeg`.
    pub content_type: &'static str,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

/// Checks an uploaded body (its `Content-Type`, size and signature) and returns it scaled for
/// `purpose`. Errors: 415 for a type not on the allow-list, 413 when too large, 422 when the bytes
/// are not a valid image of the declared type.
pub async fn process_upload(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    purpose: Purpose,
) -> Result<Processed, ApiError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(allowed_type)
        .ok_or(ApiError::UnsupportedMediaType)?;
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("the image could not be read".into())
        }
    })?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("the image is empty"));
    }
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let not_valid = || {
        ApiError::invalid(format!(
            "the file is not a valid {} image (only PNG, JPEG and WebP are accepted)",
            declared.trim_start_matches("image/").to_uppercase()
        ))
    };
    if sniff(&bytes) != Some(declared) {
        return Err(not_valid());
    }
    let format = match declared {
        "image/png" => ImageFormat::Png,
        "image/jpeg" => ImageFormat::Jpeg,
        _ => ImageFormat::WebP,
    };
    tokio::task::spawn_blocking(move || scale(&bytes, format, purpose))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("image task: {e}")))?
        .map_err(|reason| {
            tracing::info!(reason = %reason, "image upload refused");
            not_valid()
        })
}

/// Decodes, downscales (never up) and re-encodes. Synchronous; call on the blocking pool.
pub fn scale(bytes: &[u8], format: ImageFormat, purpose: Purpose) -> Result<Processed, String> {
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| e.to_string())?;
    let (w, h) = purpose.fit();
    let image = if image.width() > w || image.height() > h {
        image.resize(w, h, image::imageops::FilterType::Lanczos3)
    } else {
        image
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let content_type = match purpose {
        Purpose::Logo => {
            DynamicImage::ImageRgba8(image.to_rgba8())
                .write_to(&mut out, ImageFormat::Png)
                .map_err(|e| e.to_string())?;
            "image/png"
        }
        Purpose::Photo => {
            let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
            rgb.write_with_encoder(encoder).map_err(|e| e.to_string())?;
            "image/jpeg"
        }
    };
    Ok(Processed {
        content_type,
        bytes: out.into_inner(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 10, 10, 255]));
        let mut out = std::io::Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(img)
            .write_to(&mut out, ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    }

    #[test]
    fn large_pictures_are_scaled_into_their_box_and_small_ones_kept() {
        let logo = scale(&png(1800, 500), ImageFormat::Png, Purpose::Logo).expect("logo");
        assert_eq!(logo.content_type, "image/png");
        let back = image::load_from_memory(&logo.bytes).expect("decode");
        assert_eq!((back.width(), back.height()), (360, 100));

        let photo = scale(&png(1000, 500), ImageFormat::Png, Purpose::Photo).expect("photo");
        assert_eq!(photo.content_type, "image/jpeg");
        let back = image::load_from_memory(&photo.bytes).expect("decode");
        assert_eq!((back.width(), back.height()), (256, 128));

        let small = scale(&png(40, 20), ImageFormat::Png, Purpose::Photo).expect("small");
        let back = image::load_from_memory(&small.bytes).expect("decode");
        assert_eq!((back.width(), back.height()), (40, 20));
    }

    #[test]
    fn broken_and_oversized_images_are_refused() {
        let mut truncated = png(100, 100);
        truncated.truncate(60);
        assert!(scale(&truncated, ImageFormat::Png, Purpose::Logo).is_err());
        // A header claiming 9000 × 10 pixels is refused before any pixel is decoded.
        let wide = png(9000, 10);
        assert!(scale(&wide, ImageFormat::Png, Purpose::Logo).is_err());
    }
}
