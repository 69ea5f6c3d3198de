// The Spark side of the straggler benchmark (issue 6): the cached logistic regression with one
// deliberately slowed executor, once per spark.locality.wait, each in a fresh SparkContext.
//
// Usage (through build_and_run.sh, which adds --master and --launch-ms; benches/straggler.sh
// runs it beside Ember):
//   EmberBench --straggler [--master local-cluster[2,1,2048]] [--waits 0,100ms,3s]
//              [--slow-ms 200] [--slow-executor 1] [--lr-points 200000] [--partitions 8]
//              [--iterations 5] [--warmup 1] [--executors 2] [--log-level WARN]
//              [--conf key=value]...   (more Spark settings, e.g. spark.scheduler.revive.interval=100ms)
//
// Per wait: a SparkContext on the master (two executor JVMs with one core each, so every cached
// block lives on one executor or the other) with spark.locality.wait = the wait, started once
// both executors have registered; the LR points (the protocol's data over --partitions
// partitions, partition p on executor p % 2: cacheBalanced) persisted MEMORY_ONLY and
// materialized by one job that also reports which executor holds each block; --warmup untimed
// iterations (discarded), then --iterations timed gradient steps from zero weights. In every
// iteration task that runs on executor --slow-executor sleeps --slow-ms first (the straggler).
// A SparkListener counts the locality level (taskInfo.taskLocality) and the executor of every
// timed iteration task. One JSON line per wait on stdout (benches/README.md, "Straggler"):
//   {"system":"spark","workload":"lr_straggler","seconds":TOTAL,"answer":{"w":[...]},
//    "wait":"100ms","wait_ms":100,"total_seconds":TOTAL,"iteration_seconds":[...],
//    "locality":{"NODE_LOCAL":n,"PROCESS_LOCAL":m},"tasks_per_executor":{"0":n,"1":m},
//    "blocks_per_executor":{"0":4,"1":4},"block_executors":["0","1",...],"cache_seconds":S,
//    "context_seconds":S,"slow_ms":200,"slow_executor":"1","points":N,"partitions":P,
//    "iterations":K,"warmup_iterations":1,"master":"local-cluster[2,1,2048]"}

import java.lang.management.ManagementFactory
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

import scala.jdk.CollectionConverters._

import org.apache.spark.{SparkConf, SparkContext, SparkEnv}
import org.apache.spark.rdd.RDD
import org.apache.spark.scheduler.{SparkListener, SparkListenerExecutorAdded, SparkListenerStageSubmitted,
  SparkListenerTaskEnd}
import org.apache.spark.storage.StorageLevel

import Protocol._

/** Counts locality levels and executors of the tasks of stages submitted with `Phase` = `iter`,
 *  and records every executor that registers (id -> host). Registered through
 *  spark.extraListeners, so it sees the executors that register while the context starts;
 *  `LocalityCounter.current` is the instance of the running context. */
class LocalityCounter extends SparkListener {
  private val iterStages = ConcurrentHashMap.newKeySet[Int]()
  val levels = new ConcurrentHashMap[String, AtomicLong]()
  val executors = new ConcurrentHashMap[String, AtomicLong]()
  val finished = new AtomicLong()
  val executorHosts = new ConcurrentHashMap[String, String]()
  LocalityCounter.current = this

  override def onExecutorAdded(e: SparkListenerExecutorAdded): Unit =
    executorHosts.put(e.executorId, e.executorInfo.executorHost)

  override def onStageSubmitted(e: SparkListenerStageSubmitted): Unit =
    if (e.properties != null && e.properties.getProperty(StragglerBench.Phase) == "iter")
      iterStages.add(e.stageInfo.stageId)

  override def onTaskEnd(e: SparkListenerTaskEnd): Unit =
    if (iterStages.contains(e.stageId) && e.taskInfo != null && e.taskInfo.successful) {
      levels.computeIfAbsent(e.taskInfo.taskLocality.toString, _ => new AtomicLong()).incrementAndGet()
      executors.computeIfAbsent(e.taskInfo.executorId, _ => new AtomicLong()).incrementAndGet()
      finished.incrementAndGet()
    }
}

object LocalityCounter {
  @volatile var current: LocalityCounter = null
}

object StragglerBench {
  /** The local property that marks the iteration jobs for the listener. */
  val Phase = "ember.bench.phase"

  import EmberBench.{fmt, timed}

  /** "0" -> 0, "100ms" -> 100, "3s" -> 3000, "1.5s" -> 1500, "2min" -> 120000; bare numbers are ms. */
  def parseWaitMs(s: String): Long = {
    val t = s.trim.toLowerCase(java.util.Locale.ROOT)
    val (num, scale) =
      if (t.endsWith("ms")) (t.dropRight(2), 1.0)
      else if (t.endsWith("min")) (t.dropRight(3), 60000.0)
      else if (t.endsWith("s")) (t.dropRight(1), 1000.0)
      else (t, 1.0)
    val v = try num.toDouble catch {
      case _: NumberFormatException =>
        System.err.println(s"StragglerBench: bad wait '$s' (use e.g. 0, 100ms, 3s)"); sys.exit(2)
    }
    if (v < 0 || v.isNaN) { System.err.println(s"StragglerBench: negative wait '$s'"); sys.exit(2) }
    math.round(v * scale)
  }

  /** The protocol's LR points over `parts` partitions (partition p holds partitionRange(n, parts, p)),
   *  partition p preferring the executor `prefer(p)` (a TaskLocation string, or none). */
  def points(sc: SparkContext, n: Long, parts: Int, prefer: Int => Seq[String]): RDD[Point] =
    sc.makeRDD((0 until parts).map(p => (p, prefer(p)))).mapPartitionsWithIndex { (p, _) =>
      val (lo, hi) = partitionRange(n, parts, p)
      new Iterator[Point] {
        private var i = lo
        def hasNext: Boolean = i < hi
        def next(): Point = {
          val x = new Array[Double](LrFeatures)
          var dot = 0.0
          var j = 0
          while (j < LrFeatures) { x(j) = lrFeature(i, j); dot += x(j) * wTrue(j); j += 1 }
          i += 1
          Point(x, if (dot > 0.0) 1.0 else -1.0)
        }
      }
    }

  /** Caches the points so that partition p lives on executor ids(p % ids.size) (the straggler
   *  holds its share, like every other executor): the partitions prefer those executors, and a
   *  placement that came out otherwise (an executor that ran out of its own tasks took another's,
   *  as the locality wait allows) is dropped and cached again, up to `attempts` times.
   *  Returns the cached RDD, each partition's executor, and the seconds of the last attempt. */
  def cacheBalanced(sc: SparkContext, n: Long, parts: Int, ids: Seq[String], hosts: String => String,
      attempts: Int): (RDD[Point], Array[String], Double) = {
    val want = (0 until parts).map(p => ids(p % ids.size)).toArray
    var attempt = 1
    while (true) {
      val prefer: Int => Seq[String] =
        if (ids.size < 2) _ => Nil else p => Seq(s"executor_${hosts(want(p))}_${want(p)}")
      val pts = points(sc, n, parts, prefer)
        .persist(StorageLevel.MEMORY_ONLY)
      val (placement, seconds) = timed {
        pts.mapPartitionsWithIndex { (p, it) =>
          Iterator((p, SparkEnv.get.executorId, it.size.toLong))
        }.collect().sortBy(_._1)
      }
      val cached = placement.map(_._3).sum
      if (cached != n) sys.error(s"cached $cached points, expected $n")
      val got = placement.map(_._2)
      if (got.sameElements(want) || attempt >= attempts || ids.size < 2) {
        if (!got.sameElements(want))
          System.err.println(s"StragglerBench: placement [${got.mkString(",")}] after $attempt attempts, wanted [${want.mkString(",")}]")
        return (pts, got, seconds)
      }
      pts.unpersist(blocking = true)
      attempt += 1
    }
    sys.error("unreachable")
  }

  /** The JVM options Spark needs on Java 17, taken from this (driver) JVM's own command line. */
  def javaOptions(): String =
    ManagementFactory.getRuntimeMXBean.getInputArguments.asScala.filter { a =>
      a.startsWith("--add-opens") || a.startsWith("--add-modules") ||
        a == "-XX:+IgnoreUnrecognizedVMOptions" || a.startsWith("-Djdk.reflect") || a.startsWith("-Dio.netty")
    }.mkString(" ")

  def jsonStr(m: Iterable[(String, String)]): String =
    m.map { case (k, v) => s""""$k":"${v.replace("\\", "\\\\").replace("\"", "\\\"")}"""" }.mkString("{", ",", "}")

  def jsonMap(m: Iterable[(String, Long)]): String =
    m.toSeq.sortBy(_._1).map { case (k, v) => s""""$k":$v""" }.mkString("{", ",", "}")

  /** Waits until `executors` executors have registered (as the listener saw them): blocks
   *  cached before the second one registers would all land on the first. */
  def awaitExecutors(sc: SparkContext, counter: LocalityCounter, executors: Int): Unit = {
    val deadline = System.nanoTime() + 120L * 1000000000L
    while (counter.executorHosts.size < executors) {
      if (sc.isStopped)
        sys.error(s"the context stopped while waiting for executors (executor logs: $$SPARK_HOME/work)")
      if (System.nanoTime() > deadline)
        sys.error(s"only ${counter.executorHosts.size} of $executors executors registered within 120 s")
      Thread.sleep(20)
    }
  }

  /** One gradient step over the cached points from weights `wb`; every task on executor
   *  `slowExecutor` first sleeps `slowMs`. Returns the new weights. */
  def step(pts: RDD[Point], wb: Array[Double], n: Long, slowMs: Long, slowExecutor: String): Array[Double] = {
    val grad = pts.mapPartitions { it =>
      if (SparkEnv.get.executorId == slowExecutor) Thread.sleep(slowMs)
      it.map(p => Gradient.of(wb, p))
    }.reduce(Gradient.add)
    Array.tabulate(LrFeatures)(j => wb(j) - grad(j) / n.toDouble)
  }

  /** One wait: a fresh context, cache, iterate; returns the JSON line. */
  def runOne(master: String, waitText: String, slowMs: Long, slowExecutor: String, n: Long,
      parts: Int, iterations: Int, warmup: Int, executors: Int, logLevel: String,
      extraConf: Seq[(String, String)]): String = {
    val waitMs = parseWaitMs(waitText)
    val jar = classOf[LocalityCounter].getProtectionDomain.getCodeSource.getLocation.getPath
    val conf = new SparkConf()
      .setAppName(s"ember-straggler-wait-$waitText")
      .setMaster(master)
      .set("spark.ui.enabled", "false")
      .set("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
      .set("spark.locality.wait", s"${waitMs}ms")
      .set("spark.executor.memory", "1g")
      .set("spark.executor.extraJavaOptions", javaOptions())
      .set("spark.jars", jar)
      .set("spark.extraListeners", classOf[LocalityCounter].getName)
      .setAll(extraConf)
    val local = master.startsWith("local[") || master == "local"
    val (sc, contextSeconds) = timed {
      val sc = new SparkContext(conf)
      sc.setLogLevel(logLevel)
      if (!local) awaitExecutors(sc, LocalityCounter.current, executors)
      sc
    }
    val counter = LocalityCounter.current
    try {
      if (local)
        System.err.println(s"StragglerBench: master $master has no executor '$slowExecutor': nothing straggles")
      val hosts = counter.executorHosts.asScala.toMap
      val ids = if (hosts.isEmpty) Seq("driver") else hosts.keys.toSeq.sortBy(id => (id.length, id))
      // Cache, recording which executor computed (and so holds) each partition's block.
      val (pts, placement, cacheSeconds) = cacheBalanced(sc, n, parts, ids, hosts, attempts = 5)
      val blocks = placement.groupBy(identity).map { case (e, ps) => (e, ps.length.toLong) }
      System.err.println(s"StragglerBench: wait $waitText: partition blocks on executors [${placement.mkString(",")}]")

      // Untimed warm-up iterations (the JIT compiles the gradient code on both executors), from
      // zero weights and discarded; then the timed ones, again from zero weights.
      (1 to warmup).foreach(_ => step(pts, new Array[Double](LrFeatures), n, slowMs, slowExecutor))
      sc.setLocalProperty(Phase, "iter")
      var w = new Array[Double](LrFeatures)
      val times = (1 to iterations).map { _ =>
        val (next, s) = timed(step(pts, w, n, slowMs, slowExecutor))
        w = next
        s
      }
      sc.setLocalProperty(Phase, null)

      // The listener bus is asynchronous: wait until it has seen every iteration task.
      val expected = iterations.toLong * parts
      val deadline = System.nanoTime() + 30L * 1000000000L
      while (counter.finished.get() < expected && System.nanoTime() < deadline) Thread.sleep(10)
      if (counter.finished.get() != expected)
        System.err.println(s"StragglerBench: the listener saw ${counter.finished.get()} of $expected iteration tasks")

      val total = times.sum
      val answer = s"""{"w":[${w.map(EmberBench.fmt9).mkString(",")}]}"""
      EmberBench.json("lr_straggler", total, answer,
        s""","wait":"$waitText","wait_ms":$waitMs,"total_seconds":${fmt(total)}""" +
          s""","iteration_seconds":[${times.map(fmt).mkString(",")}]""" +
          s""","locality":${jsonMap(counter.levels.asScala.map { case (k, v) => (k, v.get) })}""" +
          s""","tasks_per_executor":${jsonMap(counter.executors.asScala.map { case (k, v) => (k, v.get) })}""" +
          s""","blocks_per_executor":${jsonMap(blocks)}""" +
          s""","block_executors":[${placement.map(e => s""""$e"""").mkString(",")}]""" +
          s""","cache_seconds":${fmt(cacheSeconds)},"context_seconds":${fmt(contextSeconds)}""" +
          s""","slow_ms":$slowMs,"slow_executor":"$slowExecutor","points":$n,"partitions":$parts""" +
          s""","iterations":$iterations,"warmup_iterations":$warmup,"master":"$master"""" +
          (if (extraConf.isEmpty) ""
           else s""","spark_conf":${jsonStr(extraConf)}"""))
    } finally {
      sc.stop()
    }
  }

  def main(args: Array[String]): Unit = {
    var master = "local-cluster[2,1,2048]"
    var waits = Seq("0", "100ms", "3s")
    var slowMs = 200L
    var slowExecutor = "1"
    var n = 200000L
    var parts = 8
    var iterations = 5
    var warmup = 1
    var executors = 2
    var logLevel = "WARN"
    var extraConf = Seq.empty[(String, String)]
    var i = 0
    while (i < args.length) {
      args(i) match {
        case "--straggler" =>
        case "--master" => master = args(i + 1); i += 1
        case "--launch-ms" => i += 1
        case "--waits" => waits = args(i + 1).split(",").map(_.trim).filter(_.nonEmpty).toSeq; i += 1
        case "--slow-ms" => slowMs = args(i + 1).toLong; i += 1
        case "--slow-executor" => slowExecutor = args(i + 1); i += 1
        case "--lr-points" => n = args(i + 1).toLong; i += 1
        case "--partitions" => parts = args(i + 1).toInt; i += 1
        case "--iterations" => iterations = args(i + 1).toInt; i += 1
        case "--warmup" => warmup = args(i + 1).toInt; i += 1
        case "--executors" => executors = args(i + 1).toInt; i += 1
        case "--log-level" => logLevel = args(i + 1); i += 1
        case "--conf" =>
          args(i + 1).split("=", 2) match {
            case Array(k, v) if k.nonEmpty => extraConf :+= (k -> v)
            case _ => System.err.println(s"StragglerBench: --conf wants key=value, got ${args(i + 1)}"); sys.exit(2)
          }
          i += 1
        case other => System.err.println(s"StragglerBench: unknown argument $other"); sys.exit(2)
      }
      i += 1
    }
    waits.foreach(parseWaitMs) // a bad wait is an error before any context starts
    if (n <= 0 || parts <= 0 || iterations <= 0 || slowMs < 0 || warmup < 0) {
      System.err.println("StragglerBench: --lr-points, --partitions, --iterations must be > 0, --slow-ms, --warmup >= 0")
      sys.exit(2)
    }
    for (w <- waits) {
      println(runOne(master, w, slowMs, slowExecutor, n, parts, iterations, warmup, executors, logLevel, extraConf))
      System.out.flush()
    }
  }
}
