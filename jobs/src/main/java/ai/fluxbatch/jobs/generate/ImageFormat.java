package ai.fluxbatch.jobs.generate;

import java.util.Locale;

/** How each image is encoded ({@code --image-format}): PNG with text chunks, or JPEG with COM segments. */
public enum ImageFormat {
    PNG("png"),
    JPEG("jpg");

    /** {@code --jpeg-quality} when none is given. */
    public static final int DEFAULT_JPEG_QUALITY = 95;

    private final String extension;

    ImageFormat(String extension) {
        this.extension = extension;
    }

    public static ImageFormat parse(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "png" -> PNG;
            case "jpeg", "jpg" -> JPEG;
            default -> throw new IllegalArgumentException("--image-format is '" + s + "', expected png or jpeg");
        };
    }

    /** The file name extension, without the dot: {@code png} or {@code jpg}. */
    public String extension() {
        return extension;
    }

    /** {@code path} (a layout's {@code .png} path) with this format's extension. */
    public String path(String path) {
        return this == PNG || !path.endsWith(".png")
                ? path
                : path.substring(0, path.length() - ".png".length()) + "." + extension;
    }
}
