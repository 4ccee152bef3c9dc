//! ImageNet (ILSVRC-2012) from the usual folder tree: `train/<class>/*.JPEG` and
//! `val/<class>/*.JPEG`. Classes are the sub-directory names in sorted order (the convention of
//! torchvision's `ImageFolder`), so both splits agree on labels. Images are decoded on access.

use std::path::{Path, PathBuf};

use crate::{Dataset, DatasetName, Error, RawImage, Result, Split};

/// An image-folder split: file paths and their class indices; decoding happens in `get`.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    classes: Vec<String>,
    files: Vec<(PathBuf, usize)>,
}

impl ImageFolder {
    /// Opens `dir/train` or `dir/val`.
    pub fn open(dir: &Path, split: Split) -> Result<Self> {
        let sub = match split {
            Split::Train => "train",
            Split::Test => "val",
        };
        let root = dir.join(sub);
        if !root.is_dir() {
            return Err(Error::Missing {
                dataset: DatasetName::Imagenet.to_string(),
                dir: dir.to_path_buf(),
                expected: format!("{sub}/<class>/*.JPEG"),
                hint: "ImageNet cannot be downloaded automatically: place the ILSVRC-2012 train and val trees (val sorted into class folders) there, or use a data directory ($REWIND_DATA_DIR) that has `imagenet/`.".into(),
            });
        }
        let mut classes: Vec<String> = read_dir(&root)?
            .into_iter()
            .filter(|p| p.is_dir())
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        classes.sort();
        let mut files = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let mut images: Vec<PathBuf> = read_dir(&root.join(class))?
                .into_iter()
                .filter(|p| is_image(p))
                .collect();
            images.sort();
            files.extend(images.into_iter().map(|p| (p, label)));
        }
        if files.is_empty() {
            return Err(Error::Invalid(format!(
                "{} holds no images (expected <class>/*.JPEG)",
                root.display()
            )));
        }
        Ok(ImageFolder { classes, files })
    }

    pub fn classes(&self) -> &[String] {
        &self.classes
    }
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|entry| entry.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect()
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpeg" | "jpg" | "png"))
}

impl Dataset<RawImage, Error> for ImageFolder {
    fn get(&self, index: usize) -> Result<RawImage> {
        let (path, label) = &self.files[index];
        let decoded = image::open(path).map_err(|e| Error::Decode {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let rgb = decoded.to_rgb8();
        let (width, height) = (rgb.width() as usize, rgb.height() as usize);
        let hwc = rgb.into_raw();
        let plane = width * height;
        let mut pixels = vec![0u8; 3 * plane];
        for (i, px) in hwc.chunks_exact(3).enumerate() {
            pixels[i] = px[0];
            pixels[plane + i] = px[1];
            pixels[2 * plane + i] = px[2];
        }
        Ok(RawImage {
            pixels,
            channels: 3,
            height,
            width,
            label: *label,
        })
    }

    fn len(&self) -> usize {
        self.files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_class_folders_and_decodes_jpeg() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (class, colour) in [("n02", [200u8, 10, 10]), ("n01", [10u8, 10, 200])] {
            let folder = dir.path().join("train").join(class);
            std::fs::create_dir_all(&folder).expect("mkdir");
            for i in 0..2 {
                let img = image::RgbImage::from_pixel(40 + i, 30, image::Rgb(colour));
                img.save(folder.join(format!("img{i}.JPEG")))
                    .expect("save jpeg");
            }
        }
        let ds = ImageFolder::open(dir.path(), Split::Train).expect("open");
        assert_eq!(ds.classes(), ["n01", "n02"]);
        assert_eq!(ds.len(), 4);
        let item = ds.get(3).expect("decode");
        assert_eq!(
            (item.label, item.channels, item.height, item.width),
            (1, 3, 30, 41)
        );
        // JPEG is lossy: the red plane is bright, the blue plane dark.
        assert!(item.pixels[0] > 150 && item.pixels[2 * 30 * 41] < 60);
        let err = ImageFolder::open(dir.path(), Split::Test).unwrap_err();
        assert!(err.to_string().contains("val/<class>/*.JPEG"), "{err}");
    }
}
