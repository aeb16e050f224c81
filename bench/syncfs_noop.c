/* bench/run's ceiling (issue 13), never a mode of rawmail: preloaded into
 * one rawmail serve, syncfs(2) returns at once, so that instance's rate is
 * what the filesystem's file work alone allows (create, write, rename),
 * with nothing made durable.  No other instance loads it. */
int syncfs(int fd);

int syncfs(int fd)
{
	(void)fd;
	return 0;
}
