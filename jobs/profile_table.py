"""spark-submit entry point of the profile job.

    spark-submit jobs/profile_table.py --table db.events --output /dbfs/profiles/events

Takes the same options as ``spark-explore profile`` (see ``--help``); the spark_explore
package must be installed on the driver and the executors (or shipped with --py-files).
"""

import sys

from spark_explore.cli import main

if __name__ == "__main__":
    sys.exit(main(["profile", *sys.argv[1:]]))
