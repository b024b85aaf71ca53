import nock from 'nock';

/** For a test file whose every request nock answers: no real connection, no interceptor left to the next test. */
export function nockOnly(): void {
  beforeAll(() => {
    nock.disableNetConnect();
  });
  afterEach(() => {
    nock.cleanAll();
  });
  afterAll(() => {
    nock.enableNetConnect();
  });
}
