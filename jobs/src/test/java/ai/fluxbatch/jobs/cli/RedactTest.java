package ai.fluxbatch.jobs.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.Charset;
import org.junit.jupiter.api.Test;

class RedactTest {
    @Test
    void masksTheUserInfoOfEveryUri() {
        assertEquals("s3a://***@bucket/p.txt", Redact.uri("s3a://AKIA:s3cr3t@bucket/p.txt"));
        assertEquals("s3a://***@bucket/p.txt", Redact.uri("s3a://AKIA:abc/def+g@bucket/p.txt"));
        assertEquals(
                "cannot read s3a://***@b/k and hdfs://***@nn:8020/d",
                Redact.text("cannot read s3a://KEY:SECRET@b/k and hdfs://user@nn:8020/d"));
        assertEquals("s3a://bucket/a@b.txt", Redact.uri("s3a://bucket/a@b.txt"));
        assertEquals("/tmp/a@b", Redact.uri("/tmp/a@b"));
    }

    @Test
    void masksTheValuesOfSecretSettings() {
        assertEquals(
                "fs.s3a.secret.key=*** and fs.s3a.access.key: ***, AWS_SECRET_ACCESS_KEY=***",
                Redact.text("fs.s3a.secret.key=abc/DEF+1 and fs.s3a.access.key: AKIA123, AWS_SECRET_ACCESS_KEY=xyz"));
        assertEquals("fs.s3a.endpoint=http://127.0.0.1:9000", Redact.text("fs.s3a.endpoint=http://127.0.0.1:9000"));
    }

    @Test
    void writerAndStreamMaskEveryLine() {
        StringWriter out = new StringWriter();
        PrintWriter w = Redact.writer(out);
        w.print("reading s3a://KEY:");
        w.println("SECRET@bucket/x");
        w.print("no newline s3a://K:S@b/");
        w.flush();
        assertEquals("reading s3a://***@bucket/x" + System.lineSeparator() + "no newline s3a://***@b/", out.toString());

        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream s = Redact.stream(new PrintStream(bytes, true, Charset.defaultCharset()));
        s.println("12:00 WARN FileSystem: s3a://KEY:SECRET@bucket/x not found");
        assertFalse(bytes.toString(Charset.defaultCharset()).contains("SECRET"), bytes.toString());
    }

    @Test
    void errorLinesAreTheRootCauseOfSparkWrappers() {
        RuntimeException root = new RuntimeException("file:/data/p.parquet is not a Parquet file. Expected magic number"
                + " at tail, but found [1, 0, 53, 106]");
        Exception spark = new org.apache.spark.SparkException(
                "Job aborted due to stage failure: Task 0 in stage 0.0"
                        + " failed 1 times, most recent failure: Lost task 0.0 in stage 0.0 (TID 0): ...\n\tat a.b.C(C.java:1)",
                new org.apache.spark.SparkException(
                        "[FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] Encountered error", root));
        assertEquals(root.getMessage(), ErrorMessages.of(spark));
        assertEquals(
                "cannot read Parquet file F: " + root.getMessage(),
                ErrorMessages.of(
                        new IllegalArgumentException("cannot read Parquet file F: " + spark.getMessage(), spark)));
        assertEquals("java.lang.IllegalArgumentException", ErrorMessages.of(new IllegalArgumentException()));
        assertEquals(
                "--device cuda: no driver",
                ErrorMessages.of(
                        new IllegalStateException("--device cuda: no driver", new RuntimeException("cuInit failed"))));
        assertEquals(
                "s3a://***@b/x",
                ErrorMessages.of(new java.io.UncheckedIOException(new java.io.FileNotFoundException("s3a://K:S@b/x"))));
        assertEquals(
                "file:/p.parquet is corrupt",
                ErrorMessages.of(new org.apache.spark.SparkException(
                        "Job aborted due to stage failure: Task 1 in stage 2.0 failed 4 times, most recent failure: Lost task"
                                + " 1.3 in stage 2.0 (TID 7) (10.0.0.5 executor 1): java.lang.RuntimeException: file:/p.parquet"
                                + " is corrupt\n\tat x.Y.z(Y.java:3)")));
    }
}
