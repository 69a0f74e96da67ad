package ai.fluxbatch.model.safetensors;

import static ai.fluxbatch.model.safetensors.SafetensorsWriterTest.assertMessage;
import static ai.fluxbatch.model.safetensors.TestFiles.entry;
import static ai.fluxbatch.model.safetensors.TestFiles.raw;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each malformed input fails on open with a message naming the file, the tensor and what was expected. */
class SafetensorsFileValidationTest {
    @TempDir
    Path dir;

    private SafetensorsException openFails(Path file) {
        return assertThrows(
                SafetensorsException.class, () -> SafetensorsFile.open(file).close());
    }

    private Path file() {
        return dir.resolve("bad.safetensors");
    }

    @Test
    void fileShorterThan8Bytes() throws IOException {
        Files.write(file(), new byte[5]);
        assertMessage(openFails(file()), file().toString(), "5 bytes", "8-byte header length");
    }

    @Test
    void headerLengthZero() throws IOException {
        Files.write(file(), new byte[16]);
        assertMessage(openFails(file()), file().toString(), "header length", "is 0");
    }

    @Test
    void headerLengthPastEndOfFile() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(100).order(ByteOrder.LITTLE_ENDIAN).putLong(1000);
        Files.write(file(), b.array());
        assertMessage(
                openFails(file()),
                file().toString(),
                "header length 1000",
                "past the end",
                "1008 bytes",
                "file is 100 bytes");
    }

    @Test
    void headerLengthOverTheBound() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(200L << 20);
        Files.write(file(), b.array());
        assertMessage(openFails(file()), file().toString(), "header length " + (200L << 20), "limit of 104857600");
        b.putLong(0, -1);
        Files.write(file(), b.array());
        assertMessage(openFails(file()), file().toString(), "header length 18446744073709551615", "limit");
    }

    @Test
    void headerIsNotValidJson() throws IOException {
        raw(file(), "{\"w\": {\"dtype\": \"F32\",", 0);
        assertMessage(openFails(file()), file().toString(), "not valid JSON");
    }

    @Test
    void headerWithTrailingGarbageIsNotValidJson() throws IOException {
        raw(file(), "{} x", 0);
        assertMessage(openFails(file()), file().toString(), "not valid JSON");
    }

    @Test
    void headerIsNotAJsonObject() throws IOException {
        raw(file(), "[1, 2]  ", 0);
        assertMessage(openFails(file()), file().toString(), "not a JSON object", "array [1,2]");
    }

    @Test
    void entryIsNotAnObject() throws IOException {
        raw(file(), "{\"w\": 5}", 0);
        assertMessage(openFails(file()), "tensor 'w' in " + file(), "not a JSON object", "number 5");
    }

    @Test
    void entryMissingShape() throws IOException {
        raw(file(), "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4);
        assertMessage(openFails(file()), "tensor 'w' in " + file(), "no \"shape\"", "expected \"dtype\"");
    }

    @Test
    void entryMissingDtype() throws IOException {
        raw(file(), "{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4);
        assertMessage(openFails(file()), "tensor 'w' in " + file(), "no \"dtype\"");
    }

    @Test
    void entryMissingDataOffsets() throws IOException {
        raw(file(), "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4);
        assertMessage(openFails(file()), "tensor 'w' in " + file(), "no \"data_offsets\"");
    }

    @Test
    void unknownDtype() throws IOException {
        raw(file(), "{" + entry("w", "F8_E4M3", "[4]", 0, 4) + "}", 4);
        assertMessage(
                openFails(file()),
                "tensor 'w' in " + file(),
                "unknown dtype 'F8_E4M3'",
                "supported: F64, F32, F16, BF16, I64, I32, I8, U8");
    }

    @Test
    void negativeShapeDimension() throws IOException {
        raw(file(), "{" + entry("w", "F32", "[2, -1]", 0, 8) + "}", 8);
        assertMessage(
                openFails(file()),
                "tensor 'w' in " + file(),
                "shape [2,-1]",
                "number -1 at index 1",
                "non-negative integers");
    }

    @Test
    void nonIntegerShapeDimension() throws IOException {
        raw(file(), "{" + entry("w", "F32", "[2.5]", 0, 8) + "}", 8);
        assertMessage(openFails(file()), "tensor 'w' in " + file(), "2.5", "non-negative integers");
    }

    @Test
    void dataOffsetsNotTwoIntegers() throws IOException {
        raw(file(), "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4);
        assertMessage(openFails(file()), "tensor 'w' in " + file(), "data_offsets", "two non-negative integers");
    }

    @Test
    void dataOffsetsBeginAfterEnd() throws IOException {
        raw(file(), "{" + entry("w", "F32", "[0]", 8, 4) + "}", 8);
        assertMessage(openFails(file()), "tensor 'w' in " + file(), "[8, 4]", "begin <= end");
    }

    @Test
    void dtypeTimesShapeIsNotTheByteLength() throws IOException {
        raw(file(), "{" + entry("w", "BF16", "[3, 4]", 0, 20) + "}", 20);
        assertMessage(
                openFails(file()),
                "tensor 'w' in " + file() + ": dtype BF16 x shape [3, 4] = 24 bytes but"
                        + " data_offsets [0, 20] span 20");
    }

    @Test
    void shapeWhoseByteCountOverflows() throws IOException {
        raw(file(), "{" + entry("w", "F64", "[4294967296, 4294967296]", 0, 8) + "}", 8);
        assertMessage(openFails(file()), "tensor 'w' in " + file(), "more than 2^63 bytes");
    }

    @Test
    void offsetsOutsideTheDataArea() throws IOException {
        String header = "{" + entry("a", "F32", "[2]", 0, 8) + ", " + entry("w", "F32", "[4]", 8, 24) + "}";
        raw(file(), header, 16);
        long dataStart = 8 + header.length();
        assertMessage(
                openFails(file()),
                "tensor 'w' in " + file(),
                "end 24",
                "data area (16 bytes)",
                "file of " + (dataStart + 24) + " bytes",
                "file is " + (dataStart + 16) + " bytes",
                "truncated");
    }

    @Test
    void truncatedGoldenFile() throws IOException {
        byte[] all = Files.readAllBytes(TestFiles.goldenTransformer());
        Files.write(file(), Arrays.copyOf(all, all.length / 2));
        assertMessage(
                openFails(file()),
                file().toString(),
                "may be truncated",
                "file of " + all.length + " bytes",
                "file is " + all.length / 2 + " bytes");
    }

    @Test
    void overlappingTensors() throws IOException {
        raw(file(), "{" + entry("a", "F32", "[4]", 0, 16) + ", " + entry("b", "F32", "[4]", 8, 24) + "}", 24);
        assertMessage(openFails(file()), "'a' [0, 16)", "'b' [8, 24)", file().toString(), "overlap");
    }

    @Test
    void emptyTensorsSitBetweenTheOthers() throws IOException {
        raw(
                file(),
                "{" + entry("a", "F32", "[4]", 0, 16) + ", " + entry("e", "F32", "[0]", 16, 16) + ", "
                        + entry("z", "F32", "[0]", 0, 0) + "}",
                16);
        try (SafetensorsFile f = SafetensorsFile.open(file())) {
            assertEquals(0, f.floats("e").length);
            assertEquals(0, f.floats("z").length);
        }
        // inside another tensor's bytes, as the reference reader also refuses
        raw(file(), "{" + entry("a", "F32", "[4]", 0, 16) + ", " + entry("e", "F32", "[0]", 8, 8) + "}", 16);
        assertMessage(openFails(file()), "'a' [0, 16)", "'e' [8, 8)", file().toString(), "overlap");
    }

    @Test
    void headerLengthOneByteShortEatingThePadding() throws IOException {
        byte[] all = Files.readAllBytes(TestFiles.goldenTransformer());
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        long n = b.getLong(0);
        assertEquals(' ', all[(int) (8 + n - 1)], "the golden header ends in padding");
        b.putLong(0, n - 1); // the JSON still parses; every tensor would start one byte early
        Files.write(file(), all);
        assertMessage(
                openFails(file()),
                file().toString(),
                "1 bytes after the end of the last tensor's data",
                "file of " + (all.length - 1) + " bytes",
                "file is " + all.length + " bytes");
    }

    @Test
    void trailingBytesAfterTheLastTensor() throws IOException {
        raw(file(), "{" + entry("a", "F32", "[2]", 0, 8) + ", " + entry("b", "F32", "[1]", 8, 12) + "}", 13);
        assertMessage(openFails(file()), file().toString(), "1 bytes after", "('b')", "end exactly at the end");
        byte[] all = Files.readAllBytes(TestFiles.goldenTransformer());
        Files.write(file(), Arrays.copyOf(all, all.length + 8));
        assertMessage(openFails(file()), file().toString(), "8 bytes after");
    }

    @Test
    void gapBetweenTensors() throws IOException {
        raw(file(), "{" + entry("a", "F32", "[2]", 0, 8) + ", " + entry("b", "F32", "[1]", 12, 16) + "}", 16);
        assertMessage(
                openFails(file()),
                "tensor 'b' in " + file(),
                "[12, 16] start at 12",
                "'a', ends at 8",
                "no gap of 4 bytes");
    }

    @Test
    void firstTensorNotAtTheStartOfTheData() throws IOException {
        raw(file(), "{" + entry("a", "F32", "[2]", 4, 12) + "}", 12);
        assertMessage(openFails(file()), "tensor 'a' in " + file(), "start at 4", "data area starts at 0");
    }

    @Test
    void headerNotStartingWithABrace() throws IOException {
        raw(file(), " {" + entry("a", "F32", "[1]", 0, 4) + "}", 4);
        assertMessage(openFails(file()), "header of " + file(), "starts with ' '", "expected '{'");
    }

    @Test
    void headerThatIsNotUtf8() throws IOException {
        byte[] json =
                ("{\"__metadata__\": {\"k\": \"\u00e9\"}}").getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        ByteBuffer buf = ByteBuffer.allocate(8 + json.length).order(ByteOrder.LITTLE_ENDIAN);
        Files.write(file(), buf.putLong(json.length).put(json).array());
        assertMessage(openFails(file()), "header of " + file(), "not valid UTF-8");
    }

    @Test
    void nullMetadataIsNoMetadata() throws IOException {
        raw(file(), "{\"__metadata__\": null, " + entry("a", "F32", "[1]", 0, 4) + "}", 4);
        try (SafetensorsFile f = SafetensorsFile.open(file())) {
            assertEquals(Map.of(), f.metadata());
        }
    }

    @Test
    void duplicateTensorName() throws IOException {
        raw(file(), "{" + entry("a", "F32", "[1]", 0, 4) + ", " + entry("a", "F32", "[1]", 4, 8) + "}", 8);
        assertMessage(openFails(file()), file().toString(), "Duplicate field 'a'");
    }

    @Test
    void metadataValueIsNotAString() throws IOException {
        raw(file(), "{\"__metadata__\": {\"format\": \"pt\", \"step\": 5}, " + entry("a", "F32", "[1]", 0, 4) + "}", 4);
        assertMessage(
                openFails(file()), "__metadata__ entry 'step'", file().toString(), "should be a string", "number 5");
    }

    @Test
    void metadataIsNotAnObject() throws IOException {
        raw(file(), "{\"__metadata__\": [\"x\"]}", 0);
        assertMessage(openFails(file()), "__metadata__", file().toString(), "object of strings");
    }

    @Test
    void missingTensorLookup() throws IOException {
        raw(file(), "{" + entry("a", "F32", "[1]", 0, 4) + "}", 4);
        try (SafetensorsFile f = SafetensorsFile.open(file())) {
            assertMessage(
                    assertThrows(SafetensorsException.class, () -> f.info("x")), "tensor 'x' not found in " + file());
            assertMessage(assertThrows(SafetensorsException.class, () -> f.floats("x")), "tensor 'x' not found");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.file("x")), "tensor 'x' not found");
        }
    }

    @Test
    void bytesOutsideTheTensor() throws IOException {
        raw(file(), "{" + entry("a", "F32", "[2]", 0, 8) + ", " + entry("b", "F32", "[1]", 8, 12) + "}", 12);
        try (SafetensorsFile f = SafetensorsFile.open(file())) {
            assertMessage(
                    assertThrows(SafetensorsException.class, () -> f.bytes("a", 4, 8)),
                    "tensor 'a' in " + file(),
                    "8 bytes at offset 4",
                    "has 8 bytes");
            assertMessage(assertThrows(SafetensorsException.class, () -> f.bytes("a", -1, 1)), "offset -1");
        }
    }

    @Test
    void readingAfterCloseIsAnError() throws IOException {
        raw(file(), "{" + entry("a", "F32", "[1]", 0, 4) + "}", 4);
        SafetensorsFile f = SafetensorsFile.open(file());
        f.close();
        assertMessage(
                assertThrows(SafetensorsException.class, () -> f.floats("a")), "'a'", file().toString(), "closed");
    }

    @Test
    void missingFile() {
        Path missing = dir.resolve("nope.safetensors");
        assertMessage(openFails(missing), missing.toString(), "no such file");
    }
}
