package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.model.image.PngEncoder;
import ai.fluxbatch.model.pipeline.RgbImage;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.ImageOutputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;
import javax.imageio.stream.MemoryCacheImageOutputStream;
import org.w3c.dom.Node;

/**
 * An image in its output format with its generation parameters ({@link PngMetadata}) inside: PNG text chunks through
 * {@link PngEncoder}; JPEG through the JDK's ImageIO writer, one COM segment per parameter ({@code key: value}, UTF-8).
 * COM segments because ImageIO writes them from its own metadata tree (EXIF or XMP would mean building an APP1 block by
 * hand) and exiftool, ImageMagick ({@code identify -verbose}) and Pillow ({@code info["comment"]}) show them.
 */
public final class ImageEncoding {
    private static final String JPEG_TREE = "javax_imageio_jpeg_image_1.0";
    /** The most data one JPEG segment holds: its 16-bit length counts itself. */
    private static final int MAX_SEGMENT_BYTES = 65533;

    private ImageEncoding() {}

    /** {@code image} as {@code format} with {@code metadata}; {@code jpegQuality} (1 to 100) is used for JPEG only. */
    public static byte[] encode(RgbImage image, Map<String, String> metadata, ImageFormat format, int jpegQuality) {
        return switch (format) {
            case PNG -> PngEncoder.encode(image, metadata);
            case JPEG -> jpeg(image, metadata, jpegQuality);
        };
    }

    private static byte[] jpeg(RgbImage image, Map<String, String> metadata, int quality) {
        if (quality < 1 || quality > 100) {
            throw new IllegalArgumentException("JPEG quality " + quality + ", expected 1 to 100");
        }
        Iterator<ImageWriter> writers = ImageIO.getImageWritersByFormatName("jpeg");
        if (!writers.hasNext()) {
            throw new IllegalStateException("this Java runtime has no ImageIO JPEG writer (module java.desktop)");
        }
        ImageWriter writer = writers.next();
        try {
            BufferedImage img = bufferedImage(image);
            ImageWriteParam param = writer.getDefaultWriteParam();
            param.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            param.setCompressionQuality(quality / 100f);
            IIOMetadata meta = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(img), param);
            IIOMetadataNode root = new IIOMetadataNode(JPEG_TREE);
            root.appendChild(new IIOMetadataNode("JPEGvariety"));
            IIOMetadataNode markers = new IIOMetadataNode("markerSequence");
            root.appendChild(markers);
            for (Map.Entry<String, String> e : metadata.entrySet()) {
                byte[] text = (e.getKey() + ": " + e.getValue()).getBytes(StandardCharsets.UTF_8);
                if (e.getKey().isEmpty() || e.getKey().contains(":")) {
                    throw new IllegalArgumentException("JPEG comment key '" + e.getKey() + "' must be a plain name");
                }
                if (text.length > MAX_SEGMENT_BYTES) {
                    throw new IllegalArgumentException("JPEG comment '" + e.getKey() + "' is " + text.length
                            + " bytes in UTF-8, more than one COM segment holds (" + MAX_SEGMENT_BYTES + ")");
                }
                IIOMetadataNode com = new IIOMetadataNode("com");
                com.setUserObject(text); // the bytes as they are: the "comment" attribute would be Latin-1
                markers.appendChild(com);
            }
            meta.mergeTree(JPEG_TREE, root);
            ByteArrayOutputStream bytes = new ByteArrayOutputStream(image.rgb().length / 8 + 4096);
            try (ImageOutputStream out = new MemoryCacheImageOutputStream(bytes)) { // no cache file in java.io.tmpdir
                writer.setOutput(out);
                writer.write(null, new IIOImage(img, null, meta), param);
            }
            return bytes.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot encode a " + image.width() + " x " + image.height() + " JPEG", e);
        } finally {
            writer.dispose();
        }
    }

    private static BufferedImage bufferedImage(RgbImage image) {
        BufferedImage img = new BufferedImage(image.width(), image.height(), BufferedImage.TYPE_INT_RGB);
        byte[] rgb = image.rgb();
        int[] row = new int[image.width()];
        for (int y = 0; y < image.height(); y++) {
            for (int x = 0; x < image.width(); x++) {
                int i = (y * image.width() + x) * 3;
                row[x] = (rgb[i] & 0xff) << 16 | (rgb[i + 1] & 0xff) << 8 | (rgb[i + 2] & 0xff);
            }
            img.setRGB(0, y, image.width(), 1, row, 0, image.width());
        }
        return img;
    }

    /** A decoded JPEG: its size and the {@code key: value} COM segments, in order. */
    public record Jpeg(int width, int height, Map<String, String> comments) {}

    /**
     * Decodes {@code jpeg} with ImageIO (every pixel, so a file cut short fails) and reads back its {@code key: value}
     * COM segments; comments of another form are left out. Throws {@link IOException} when it is not a complete JPEG.
     */
    public static Jpeg readJpeg(byte[] jpeg) throws IOException {
        Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName("jpeg");
        if (!readers.hasNext()) {
            throw new IllegalStateException("this Java runtime has no ImageIO JPEG reader (module java.desktop)");
        }
        if (jpeg.length < 4
                || (jpeg[jpeg.length - 2] & 0xff) != 0xff
                || (jpeg[jpeg.length - 1] & 0xff) != 0xd9) { // ImageIO pads a truncated scan: check the EOI marker
            throw new IOException("not a complete JPEG: no end-of-image marker");
        }
        ImageReader reader = readers.next();
        try (ImageInputStream in = new MemoryCacheImageInputStream(new ByteArrayInputStream(jpeg))) {
            reader.setInput(in, true, false);
            BufferedImage img = reader.read(0);
            Map<String, String> comments = new LinkedHashMap<>();
            collectComments(reader.getImageMetadata(0).getAsTree(JPEG_TREE), comments);
            return new Jpeg(img.getWidth(), img.getHeight(), comments);
        } catch (RuntimeException e) { // ImageIO's own errors for corrupt data
            throw new IOException("not a readable JPEG: " + e, e);
        } finally {
            reader.dispose();
        }
    }

    private static void collectComments(Node node, Map<String, String> into) {
        if ("com".equals(node.getNodeName())
                && node instanceof IIOMetadataNode n
                && n.getUserObject() instanceof byte[] b) {
            String text = new String(b, StandardCharsets.UTF_8);
            int colon = text.indexOf(": ");
            if (colon > 0) {
                into.put(text.substring(0, colon), text.substring(colon + 2));
            }
        }
        for (Node c = node.getFirstChild(); c != null; c = c.getNextSibling()) {
            collectComments(c, into);
        }
    }
}
