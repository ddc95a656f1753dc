// The jobs tools/bench-flink runs on Apache Flink, written as a Flink user would write them, to
// compare with the same jobs on Baton (see the README's performance section):
//
//   keyed-count OUT KEYS discard|file   an endless sequence, each number n as ("k" + n % KEYS, n),
//                                       keyed by the key to a per-key count (ValueState) that
//                                       emits (key, count) for every record into a discarding
//                                       sink, or as "key,count" lines into the exactly-once
//                                       FileSink under OUT; checkpoints every second.
//   batch-word-count IN OUT             the text files under IN split into lower-case words,
//                                       keyed by word to a sum written as "word,count" lines
//                                       into a FileSink under OUT; batch execution.
//
// Parallelism comes from the cluster (parallelism.default); object reuse stays off (the default).
import java.time.Duration;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.CheckpointingMode;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.filesystem.rollingpolicies.OnCheckpointRollingPolicy;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

public final class BatonComparison {
    public static void main(String[] args) throws Exception {
        if (args.length >= 3 && args[0].equals("keyed-count")) {
            keyedCount(args[1], Integer.parseInt(args[2]), args.length > 3 ? args[3] : "discard");
        } else if (args.length == 3 && args[0].equals("batch-word-count")) {
            batchWordCount(args[1], args[2]);
        } else {
            throw new IllegalArgumentException("usage: keyed-count OUT KEYS discard|file | batch-word-count IN OUT");
        }
    }

    /** The per-key count: emits the key's new count for every record. */
    static final class Count extends KeyedProcessFunction<String, Tuple2<String, Long>, Tuple2<String, Long>> {
        private transient ValueState<Long> count;

        @Override
        public void open(org.apache.flink.api.common.functions.OpenContext context) {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
        }

        @Override
        public void processElement(Tuple2<String, Long> record, Context context, Collector<Tuple2<String, Long>> out) throws Exception {
            Long current = count.value();
            long next = (current == null ? 0L : current) + 1L;
            count.update(next);
            out.collect(Tuple2.of(record.f0, next));
        }
    }

    static void keyedCount(String out, int keys, String sink) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.enableCheckpointing(1000, CheckpointingMode.EXACTLY_ONCE);
        DataStream<Tuple2<String, Long>> counts = env
            .fromSequence(0, Long.MAX_VALUE)
            .map(n -> Tuple2.of("k" + (n % keys), n))
            .returns(Types.TUPLE(Types.STRING, Types.LONG))
            .name("source")
            .keyBy(record -> record.f0)
            .process(new Count())
            .returns(Types.TUPLE(Types.STRING, Types.LONG))
            .name("count");
        if (sink.equals("file")) {
            counts.map(record -> record.f0 + "," + record.f1)
                .returns(Types.STRING)
                .sinkTo(FileSink.forRowFormat(new Path(out), new SimpleStringEncoder<String>("UTF-8"))
                    .withRollingPolicy(OnCheckpointRollingPolicy.build())
                    .build())
                .name("file-sink");
        } else {
            counts.sinkTo(new DiscardingSink<>()).name("discard");
        }
        env.execute("keyed-count-" + sink);
    }

    static void batchWordCount(String in, String out) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        FileSource<String> source = FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(in)).build();
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "text-file")
            .flatMap((FlatMapFunction<String, Tuple2<String, Long>>) (line, collector) -> {
                for (String word : line.toLowerCase().split("[^\\p{L}\\p{N}]+")) {
                    if (!word.isEmpty()) collector.collect(Tuple2.of(word, 1L));
                }
            })
            .returns(Types.TUPLE(Types.STRING, Types.LONG))
            .name("tokenize")
            .keyBy(record -> record.f0)
            .sum(1)
            .name("sum")
            .map(record -> record.f0 + "," + record.f1)
            .returns(Types.STRING)
            .sinkTo(FileSink.forRowFormat(new Path(out), new SimpleStringEncoder<String>("UTF-8")).build())
            .name("file-sink");
        env.execute("batch-word-count");
    }
}
