import { defineContract, type ClientOf } from '../../http/contract.js';
import { statusMethod } from '../../core/role-status.js';

// The ingest role's interface, shared by its in-process and HTTP forms. Later work adds methods here.
export const IngestContract = defineContract('ingest', {
  status: statusMethod,
});
export type IngestClient = ClientOf<typeof IngestContract>;
